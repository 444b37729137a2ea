// Original file: proto/tensormem/v1/memory.proto

import type { MemorySnapshot as _tensormem_v1_MemorySnapshot, MemorySnapshot__Output as _tensormem_v1_MemorySnapshot__Output } from '../../tensormem/v1/MemorySnapshot';

export interface GetMemorySnapshotResponse {
  'snapshot'?: (_tensormem_v1_MemorySnapshot | null);
}

export interface GetMemorySnapshotResponse__Output {
  'snapshot': (_tensormem_v1_MemorySnapshot__Output | null);
}
