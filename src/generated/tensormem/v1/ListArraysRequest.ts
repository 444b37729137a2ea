// Original file: proto/tensormem/v1/array.proto


export interface ListArraysRequest {
  'lease_id'?: (string);
  'page_size'?: (number);
  'page_token'?: (string);
}

export interface ListArraysRequest__Output {
  'lease_id': (string);
  'page_size': (number);
  'page_token': (string);
}
