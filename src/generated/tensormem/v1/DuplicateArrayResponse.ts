// Original file: proto/tensormem/v1/array.proto

import type { ArrayInfo as _tensormem_v1_ArrayInfo, ArrayInfo__Output as _tensormem_v1_ArrayInfo__Output } from '../../tensormem/v1/ArrayInfo';

export interface DuplicateArrayResponse {
  'array'?: (_tensormem_v1_ArrayInfo | null);
}

export interface DuplicateArrayResponse__Output {
  'array': (_tensormem_v1_ArrayInfo__Output | null);
}
