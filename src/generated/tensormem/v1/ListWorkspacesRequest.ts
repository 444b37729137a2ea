// Original file: proto/tensormem/v1/workspace.proto


export interface ListWorkspacesRequest {
  'lease_id'?: (string);
}

export interface ListWorkspacesRequest__Output {
  'lease_id': (string);
}
