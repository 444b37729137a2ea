// Original file: proto/tensormem/v1/lease.proto

import type { Timestamp as _google_protobuf_Timestamp, Timestamp__Output as _google_protobuf_Timestamp__Output } from '../../google/protobuf/Timestamp';

export interface Lease {
  'lease_id'?: (string);
  'token'?: (string);
  'ttl_seconds'?: (number);
  'expires_at'?: (_google_protobuf_Timestamp | null);
  'tenant'?: (string);
  'client_name'?: (string);
}

export interface Lease__Output {
  'lease_id': (string);
  'token': (string);
  'ttl_seconds': (number);
  'expires_at': (_google_protobuf_Timestamp__Output | null);
  'tenant': (string);
  'client_name': (string);
}
