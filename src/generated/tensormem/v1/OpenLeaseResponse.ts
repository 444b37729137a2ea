// Original file: proto/tensormem/v1/lease.proto

import type { Lease as _tensormem_v1_Lease, Lease__Output as _tensormem_v1_Lease__Output } from '../../tensormem/v1/Lease';

export interface OpenLeaseResponse {
  'lease'?: (_tensormem_v1_Lease | null);
  'data_address'?: (string);
}

export interface OpenLeaseResponse__Output {
  'lease': (_tensormem_v1_Lease__Output | null);
  'data_address': (string);
}
