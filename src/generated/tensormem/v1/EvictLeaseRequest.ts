// Original file: proto/tensormem/v1/lease.proto


export interface EvictLeaseRequest {
  'lease_id'?: (string);
  'tenant'?: (string);
}

export interface EvictLeaseRequest__Output {
  'lease_id': (string);
  'tenant': (string);
}
