// Original file: proto/tensormem/v1/memory.proto

import type { MemoryInfo as _tensormem_v1_MemoryInfo, MemoryInfo__Output as _tensormem_v1_MemoryInfo__Output } from '../../tensormem/v1/MemoryInfo';

export interface WatchMemoryResponse {
  'info'?: (_tensormem_v1_MemoryInfo | null);
}

export interface WatchMemoryResponse__Output {
  'info': (_tensormem_v1_MemoryInfo__Output | null);
}
