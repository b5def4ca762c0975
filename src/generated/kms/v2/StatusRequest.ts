// Original file: proto/kms/v2/api.proto


export interface StatusRequest {
}

export interface StatusRequest__Output {
}
