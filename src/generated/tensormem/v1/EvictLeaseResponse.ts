// Original file: proto/tensormem/v1/lease.proto

import type { Long } from '@grpc/proto-loader';

export interface EvictLeaseResponse {
  'freed_bytes'?: (number | string | Long);
  'evicted_leases'?: (number);
}

export interface EvictLeaseResponse__Output {
  'freed_bytes': (number);
  'evicted_leases': (number);
}
