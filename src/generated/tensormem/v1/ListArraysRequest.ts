// Original file: proto/tensormem/v1/array.proto


export interface ListArraysRequest {
  'lease_id'?: (string);
}

export interface ListArraysRequest__Output {
  'lease_id': (string);
}
