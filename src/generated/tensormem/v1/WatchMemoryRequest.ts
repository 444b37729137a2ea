// Original file: proto/tensormem/v1/memory.proto


export interface WatchMemoryRequest {
  'interval_ms'?: (number);
}

export interface WatchMemoryRequest__Output {
  'interval_ms': (number);
}
