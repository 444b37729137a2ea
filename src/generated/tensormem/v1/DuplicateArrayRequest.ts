// Original file: proto/tensormem/v1/array.proto

import type { Placement as _tensormem_v1_Placement, Placement__Output as _tensormem_v1_Placement__Output } from '../../tensormem/v1/Placement';

export interface DuplicateArrayRequest {
  'array_id'?: (string);
  'workspace_id'?: (string);
  'placement'?: (_tensormem_v1_Placement);
  'detached'?: (boolean);
  'label'?: (string);
}

export interface DuplicateArrayRequest__Output {
  'array_id': (string);
  'workspace_id': (string);
  'placement': (_tensormem_v1_Placement__Output);
  'detached': (boolean);
  'label': (string);
}
