// Original file: proto/tensormem/v1/lease.proto


export interface OpenLeaseRequest {
  'tenant'?: (string);
  'client_name'?: (string);
  'ttl_seconds'?: (number);
  'labels'?: ({[key: string]: string});
}

export interface OpenLeaseRequest__Output {
  'tenant': (string);
  'client_name': (string);
  'ttl_seconds': (number);
  'labels': ({[key: string]: string});
}
