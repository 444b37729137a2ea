// Original file: proto/tensormem/v1/lease.proto


export interface KeepAliveRequest {
  'lease_id'?: (string);
}

export interface KeepAliveRequest__Output {
  'lease_id': (string);
}
