// Original file: proto/tensormem/v1/memory.proto

import type { Timestamp as _google_protobuf_Timestamp, Timestamp__Output as _google_protobuf_Timestamp__Output } from '../../google/protobuf/Timestamp';
import type { PoolSnapshot as _tensormem_v1_PoolSnapshot, PoolSnapshot__Output as _tensormem_v1_PoolSnapshot__Output } from '../../tensormem/v1/PoolSnapshot';
import type { MemoryInfo as _tensormem_v1_MemoryInfo, MemoryInfo__Output as _tensormem_v1_MemoryInfo__Output } from '../../tensormem/v1/MemoryInfo';

export interface MemorySnapshot {
  'taken_at'?: (_google_protobuf_Timestamp | null);
  'pools'?: (_tensormem_v1_PoolSnapshot)[];
  'info'?: (_tensormem_v1_MemoryInfo | null);
}

export interface MemorySnapshot__Output {
  'taken_at': (_google_protobuf_Timestamp__Output | null);
  'pools': (_tensormem_v1_PoolSnapshot__Output)[];
  'info': (_tensormem_v1_MemoryInfo__Output | null);
}
