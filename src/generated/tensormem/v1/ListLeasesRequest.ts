// Original file: proto/tensormem/v1/lease.proto


export interface ListLeasesRequest {
  'tenant'?: (string);
  'page_size'?: (number);
  'page_token'?: (string);
}

export interface ListLeasesRequest__Output {
  'tenant': (string);
  'page_size': (number);
  'page_token': (string);
}
