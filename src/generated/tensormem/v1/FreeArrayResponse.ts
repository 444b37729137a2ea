// Original file: proto/tensormem/v1/array.proto

import type { Long } from '@grpc/proto-loader';

export interface FreeArrayResponse {
  'freed_bytes'?: (number | string | Long);
}

export interface FreeArrayResponse__Output {
  'freed_bytes': (number);
}
