// Original file: proto/tensormem/v1/lease.proto

import type { LeaseSummary as _tensormem_v1_LeaseSummary, LeaseSummary__Output as _tensormem_v1_LeaseSummary__Output } from '../../tensormem/v1/LeaseSummary';

export interface ListLeasesResponse {
  'leases'?: (_tensormem_v1_LeaseSummary)[];
  'next_page_token'?: (string);
  'total_count'?: (number);
}

export interface ListLeasesResponse__Output {
  'leases': (_tensormem_v1_LeaseSummary__Output)[];
  'next_page_token': (string);
  'total_count': (number);
}
