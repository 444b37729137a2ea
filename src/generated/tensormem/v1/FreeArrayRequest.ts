// Original file: proto/tensormem/v1/array.proto


export interface FreeArrayRequest {
  'array_id'?: (string);
}

export interface FreeArrayRequest__Output {
  'array_id': (string);
}
