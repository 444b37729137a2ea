// Original file: proto/tensormem/v1/workspace.proto


export interface InitializeWorkspaceRequest {
  'workspace_id'?: (string);
}

export interface InitializeWorkspaceRequest__Output {
  'workspace_id': (string);
}
