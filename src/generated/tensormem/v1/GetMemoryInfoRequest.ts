// Original file: proto/tensormem/v1/memory.proto


export interface GetMemoryInfoRequest {
}

export interface GetMemoryInfoRequest__Output {
}
