// Original file: proto/tensormem/v1/array.proto

import type { DataType as _tensormem_v1_DataType, DataType__Output as _tensormem_v1_DataType__Output } from '../../tensormem/v1/DataType';
import type { Placement as _tensormem_v1_Placement, Placement__Output as _tensormem_v1_Placement__Output } from '../../tensormem/v1/Placement';
import type { Long } from '@grpc/proto-loader';

export interface AllocateArrayRequest {
  'lease_id'?: (string);
  'data_type'?: (_tensormem_v1_DataType);
  'shape'?: (number | string | Long)[];
  'placement'?: (_tensormem_v1_Placement);
  'device'?: (number);
  'workspace_id'?: (string);
  'zero'?: (boolean);
  'label'?: (string);
  'request_id'?: (string);
  'wait_for_memory'?: (boolean);
  'exportable'?: (boolean);
}

export interface AllocateArrayRequest__Output {
  'lease_id': (string);
  'data_type': (_tensormem_v1_DataType__Output);
  'shape': (number)[];
  'placement': (_tensormem_v1_Placement__Output);
  'device': (number);
  'workspace_id': (string);
  'zero': (boolean);
  'label': (string);
  'request_id': (string);
  'wait_for_memory': (boolean);
  'exportable': (boolean);
}
