// Original file: proto/tensormem/v1/array.proto

import type { Long } from '@grpc/proto-loader';

export interface CudaIpcRegion {
  'handle'?: (Buffer | Uint8Array | string);
  'device'?: (number);
  'offset'?: (number | string | Long);
  'length'?: (number | string | Long);
  'region_bytes'?: (number | string | Long);
}

export interface CudaIpcRegion__Output {
  'handle': (Buffer);
  'device': (number);
  'offset': (number);
  'length': (number);
  'region_bytes': (number);
}
