// Original file: proto/tensormem/v1/workspace.proto


export interface LeaveWorkspaceRequest {
  'workspace_id'?: (string);
}

export interface LeaveWorkspaceRequest__Output {
  'workspace_id': (string);
}
