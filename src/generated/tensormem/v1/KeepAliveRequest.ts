// Original file: proto/tensormem/v1/lease.proto


export interface KeepAliveRequest {
  'lease_id'?: (string);
  'release_on_disconnect'?: (boolean);
  'no_renew'?: (boolean);
}

export interface KeepAliveRequest__Output {
  'lease_id': (string);
  'release_on_disconnect': (boolean);
  'no_renew': (boolean);
}
