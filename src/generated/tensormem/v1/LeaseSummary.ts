// Original file: proto/tensormem/v1/lease.proto

import type { Timestamp as _google_protobuf_Timestamp, Timestamp__Output as _google_protobuf_Timestamp__Output } from '../../google/protobuf/Timestamp';
import type { Long } from '@grpc/proto-loader';

export interface LeaseSummary {
  'lease_id'?: (string);
  'tenant'?: (string);
  'client_name'?: (string);
  'labels'?: ({[key: string]: string});
  'created_at'?: (_google_protobuf_Timestamp | null);
  'expires_at'?: (_google_protobuf_Timestamp | null);
  'age_seconds'?: (number | string | Long);
  'device_bytes'?: (number | string | Long);
  'host_bytes'?: (number | string | Long);
  'array_count'?: (number);
  'ttl_seconds'?: (number);
  'mmap_bytes'?: (number | string | Long);
}

export interface LeaseSummary__Output {
  'lease_id': (string);
  'tenant': (string);
  'client_name': (string);
  'labels': ({[key: string]: string});
  'created_at': (_google_protobuf_Timestamp__Output | null);
  'expires_at': (_google_protobuf_Timestamp__Output | null);
  'age_seconds': (number);
  'device_bytes': (number);
  'host_bytes': (number);
  'array_count': (number);
  'ttl_seconds': (number);
  'mmap_bytes': (number);
}
