// Original file: proto/tensormem/v1/array.proto

import type { Long } from '@grpc/proto-loader';

export interface WriteArrayHeader {
  'array_id'?: (string);
  'offset'?: (number | string | Long);
  'crc32c'?: (number);
  '_crc32c'?: "crc32c";
}

export interface WriteArrayHeader__Output {
  'array_id': (string);
  'offset': (number);
  'crc32c'?: (number);
  '_crc32c'?: "crc32c";
}
