// Original file: proto/tensormem/v1/memory.proto

import type { SegmentSnapshot as _tensormem_v1_SegmentSnapshot, SegmentSnapshot__Output as _tensormem_v1_SegmentSnapshot__Output } from '../../tensormem/v1/SegmentSnapshot';

export interface PoolSnapshot {
  'pool'?: (string);
  'segments'?: (_tensormem_v1_SegmentSnapshot)[];
}

export interface PoolSnapshot__Output {
  'pool': (string);
  'segments': (_tensormem_v1_SegmentSnapshot__Output)[];
}
