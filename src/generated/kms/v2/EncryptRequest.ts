// Original file: proto/kms/v2/api.proto


export interface EncryptRequest {
  'plaintext'?: (Buffer | Uint8Array | string);
  'uid'?: (string);
}

export interface EncryptRequest__Output {
  'plaintext': (Buffer);
  'uid': (string);
}
