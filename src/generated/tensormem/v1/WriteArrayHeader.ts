// Original file: proto/tensormem/v1/array.proto

import type { Long } from '@grpc/proto-loader';

export interface WriteArrayHeader {
  'array_id'?: (string);
  'offset'?: (number | string | Long);
}

export interface WriteArrayHeader__Output {
  'array_id': (string);
  'offset': (number);
}
