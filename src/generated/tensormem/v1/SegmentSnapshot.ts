// Original file: proto/tensormem/v1/memory.proto

import type { BlockSnapshot as _tensormem_v1_BlockSnapshot, BlockSnapshot__Output as _tensormem_v1_BlockSnapshot__Output } from '../../tensormem/v1/BlockSnapshot';
import type { Long } from '@grpc/proto-loader';

export interface SegmentSnapshot {
  'chunk'?: (number | string | Long);
  'bytes'?: (number | string | Long);
  'blocks'?: (_tensormem_v1_BlockSnapshot)[];
}

export interface SegmentSnapshot__Output {
  'chunk': (number);
  'bytes': (number);
  'blocks': (_tensormem_v1_BlockSnapshot__Output)[];
}
