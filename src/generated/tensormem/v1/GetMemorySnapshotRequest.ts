// Original file: proto/tensormem/v1/memory.proto


export interface GetMemorySnapshotRequest {
}

export interface GetMemorySnapshotRequest__Output {
}
