// Original file: proto/tensormem/v1/workspace.proto

import type { WorkspaceInfo as _tensormem_v1_WorkspaceInfo, WorkspaceInfo__Output as _tensormem_v1_WorkspaceInfo__Output } from '../../tensormem/v1/WorkspaceInfo';

export interface InitializeWorkspaceResponse {
  'workspace'?: (_tensormem_v1_WorkspaceInfo | null);
}

export interface InitializeWorkspaceResponse__Output {
  'workspace': (_tensormem_v1_WorkspaceInfo__Output | null);
}
