// Original file: proto/kms/v2/api.proto


export interface EncryptResponse {
  'ciphertext'?: (Buffer | Uint8Array | string);
  'keyId'?: (string);
  'annotations'?: ({[key: string]: Buffer | Uint8Array | string});
}

export interface EncryptResponse__Output {
  'ciphertext': (Buffer);
  'keyId': (string);
  'annotations': ({[key: string]: Buffer});
}
