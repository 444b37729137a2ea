// Original file: proto/tensormem/v1/lease.proto

import type { Long } from '@grpc/proto-loader';

export interface CloseLeaseResponse {
  'freed_bytes'?: (number | string | Long);
}

export interface CloseLeaseResponse__Output {
  'freed_bytes': (number);
}
