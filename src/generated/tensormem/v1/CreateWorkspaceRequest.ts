// Original file: proto/tensormem/v1/workspace.proto

import type { WorkspaceConfig as _tensormem_v1_WorkspaceConfig, WorkspaceConfig__Output as _tensormem_v1_WorkspaceConfig__Output } from '../../tensormem/v1/WorkspaceConfig';

export interface CreateWorkspaceRequest {
  'lease_id'?: (string);
  'name'?: (string);
  'config'?: (_tensormem_v1_WorkspaceConfig | null);
}

export interface CreateWorkspaceRequest__Output {
  'lease_id': (string);
  'name': (string);
  'config': (_tensormem_v1_WorkspaceConfig__Output | null);
}
