// Original file: proto/kms/v2/api.proto


export interface DecryptResponse {
  'plaintext'?: (Buffer | Uint8Array | string);
}

export interface DecryptResponse__Output {
  'plaintext': (Buffer);
}
