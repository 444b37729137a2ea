// Original file: proto/tensormem/v1/lease.proto

import type { LeaseOrder as _tensormem_v1_LeaseOrder, LeaseOrder__Output as _tensormem_v1_LeaseOrder__Output } from '../../tensormem/v1/LeaseOrder';

export interface ListLeasesRequest {
  'tenant'?: (string);
  'page_size'?: (number);
  'page_token'?: (string);
  'order'?: (_tensormem_v1_LeaseOrder);
}

export interface ListLeasesRequest__Output {
  'tenant': (string);
  'page_size': (number);
  'page_token': (string);
  'order': (_tensormem_v1_LeaseOrder__Output);
}
