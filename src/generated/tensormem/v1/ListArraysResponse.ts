// Original file: proto/tensormem/v1/array.proto

import type { ArrayInfo as _tensormem_v1_ArrayInfo, ArrayInfo__Output as _tensormem_v1_ArrayInfo__Output } from '../../tensormem/v1/ArrayInfo';

export interface ListArraysResponse {
  'arrays'?: (_tensormem_v1_ArrayInfo)[];
  'next_page_token'?: (string);
  'total_count'?: (number);
}

export interface ListArraysResponse__Output {
  'arrays': (_tensormem_v1_ArrayInfo__Output)[];
  'next_page_token': (string);
  'total_count': (number);
}
