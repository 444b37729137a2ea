// Original file: proto/tensormem/v1/workspace.proto


export interface DestroyWorkspaceRequest {
  'workspace_id'?: (string);
}

export interface DestroyWorkspaceRequest__Output {
  'workspace_id': (string);
}
