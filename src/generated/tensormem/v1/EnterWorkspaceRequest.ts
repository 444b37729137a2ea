// Original file: proto/tensormem/v1/workspace.proto


export interface EnterWorkspaceRequest {
  'workspace_id'?: (string);
}

export interface EnterWorkspaceRequest__Output {
  'workspace_id': (string);
}
