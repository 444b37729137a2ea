// Original file: proto/tensormem/v1/array.proto

import type { Long } from '@grpc/proto-loader';

export interface SharedMemoryRegion {
  'name'?: (string);
  'offset'?: (number | string | Long);
  'length'?: (number | string | Long);
  'region_bytes'?: (number | string | Long);
}

export interface SharedMemoryRegion__Output {
  'name': (string);
  'offset': (number);
  'length': (number);
  'region_bytes': (number);
}
