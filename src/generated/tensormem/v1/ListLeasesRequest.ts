// Original file: proto/tensormem/v1/lease.proto


export interface ListLeasesRequest {
}

export interface ListLeasesRequest__Output {
}
