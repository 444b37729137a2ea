// Original file: proto/tensormem/v1/array.proto


export interface GetArrayRequest {
  'array_id'?: (string);
}

export interface GetArrayRequest__Output {
  'array_id': (string);
}
