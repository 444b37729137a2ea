// Original file: proto/tensormem/v1/lease.proto


export interface CloseLeaseRequest {
  'lease_id'?: (string);
}

export interface CloseLeaseRequest__Output {
  'lease_id': (string);
}
