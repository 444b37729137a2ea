// Original file: proto/tensormem/v1/workspace.proto


export interface BorrowWorkspaceRequest {
  'workspace_id'?: (string);
}

export interface BorrowWorkspaceRequest__Output {
  'workspace_id': (string);
}
