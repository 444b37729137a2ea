// Original file: proto/tensormem/v1/workspace.proto


export interface GetWorkspaceRequest {
  'workspace_id'?: (string);
}

export interface GetWorkspaceRequest__Output {
  'workspace_id': (string);
}
