// Original file: proto/tensormem/v1/memory.proto


export interface GetConfigRequest {
}

export interface GetConfigRequest__Output {
}
