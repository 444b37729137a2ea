// Original file: proto/tensormem/v1/workspace.proto


export interface ScopeOutRequest {
  'lease_id'?: (string);
}

export interface ScopeOutRequest__Output {
  'lease_id': (string);
}
