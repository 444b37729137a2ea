// Original file: proto/tensormem/v1/lease.proto

import type { Timestamp as _google_protobuf_Timestamp, Timestamp__Output as _google_protobuf_Timestamp__Output } from '../../google/protobuf/Timestamp';

export interface KeepAliveResponse {
  'lease_id'?: (string);
  'expires_at'?: (_google_protobuf_Timestamp | null);
  'ttl_seconds'?: (number);
}

export interface KeepAliveResponse__Output {
  'lease_id': (string);
  'expires_at': (_google_protobuf_Timestamp__Output | null);
  'ttl_seconds': (number);
}
