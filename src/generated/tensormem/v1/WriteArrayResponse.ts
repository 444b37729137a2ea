// Original file: proto/tensormem/v1/array.proto

import type { Long } from '@grpc/proto-loader';

export interface WriteArrayResponse {
  'bytes_written'?: (number | string | Long);
}

export interface WriteArrayResponse__Output {
  'bytes_written': (number);
}
