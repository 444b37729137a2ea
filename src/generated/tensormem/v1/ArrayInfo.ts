// Original file: proto/tensormem/v1/array.proto

import type { DataType as _tensormem_v1_DataType, DataType__Output as _tensormem_v1_DataType__Output } from '../../tensormem/v1/DataType';
import type { Placement as _tensormem_v1_Placement, Placement__Output as _tensormem_v1_Placement__Output } from '../../tensormem/v1/Placement';
import type { Timestamp as _google_protobuf_Timestamp, Timestamp__Output as _google_protobuf_Timestamp__Output } from '../../google/protobuf/Timestamp';
import type { Long } from '@grpc/proto-loader';

export interface ArrayInfo {
  'array_id'?: (string);
  'lease_id'?: (string);
  'data_type'?: (_tensormem_v1_DataType);
  'shape'?: (number | string | Long)[];
  'byte_size'?: (number | string | Long);
  'placement'?: (_tensormem_v1_Placement);
  'device'?: (number);
  'workspace_id'?: (string);
  'attached'?: (boolean);
  'generation'?: (number | string | Long);
  'host_valid'?: (boolean);
  'device_valid'?: (boolean);
  'label'?: (string);
  'has_host_mirror'?: (boolean);
  'created_at'?: (_google_protobuf_Timestamp | null);
  'held_bytes'?: (number | string | Long);
  'host_exportable'?: (boolean);
  'device_exportable'?: (boolean);
}

export interface ArrayInfo__Output {
  'array_id': (string);
  'lease_id': (string);
  'data_type': (_tensormem_v1_DataType__Output);
  'shape': (number)[];
  'byte_size': (number);
  'placement': (_tensormem_v1_Placement__Output);
  'device': (number);
  'workspace_id': (string);
  'attached': (boolean);
  'generation': (number);
  'host_valid': (boolean);
  'device_valid': (boolean);
  'label': (string);
  'has_host_mirror': (boolean);
  'created_at': (_google_protobuf_Timestamp__Output | null);
  'held_bytes': (number);
  'host_exportable': (boolean);
  'device_exportable': (boolean);
}
