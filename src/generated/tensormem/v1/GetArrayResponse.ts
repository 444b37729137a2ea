// Original file: proto/tensormem/v1/array.proto

import type { ArrayInfo as _tensormem_v1_ArrayInfo, ArrayInfo__Output as _tensormem_v1_ArrayInfo__Output } from '../../tensormem/v1/ArrayInfo';

export interface GetArrayResponse {
  'array'?: (_tensormem_v1_ArrayInfo | null);
  'data_address'?: (string);
}

export interface GetArrayResponse__Output {
  'array': (_tensormem_v1_ArrayInfo__Output | null);
  'data_address': (string);
}
