// Original file: proto/tensormem/v1/lease.proto


export interface RenewLeaseRequest {
  'lease_id'?: (string);
  'ttl_seconds'?: (number);
}

export interface RenewLeaseRequest__Output {
  'lease_id': (string);
  'ttl_seconds': (number);
}
