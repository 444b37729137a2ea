// Original file: proto/tensormem/v1/array.proto

import type { Long } from '@grpc/proto-loader';

export interface ReadArrayRequest {
  'array_id'?: (string);
  'offset'?: (number | string | Long);
  'length'?: (number | string | Long);
}

export interface ReadArrayRequest__Output {
  'array_id': (string);
  'offset': (number);
  'length': (number);
}
