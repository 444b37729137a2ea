// Original file: proto/tensormem/v1/array.proto

import type { Long } from '@grpc/proto-loader';

export interface ReadArrayResponse {
  'offset'?: (number | string | Long);
  'data'?: (Buffer | Uint8Array | string);
}

export interface ReadArrayResponse__Output {
  'offset': (number);
  'data': (Buffer);
}
