// Original file: proto/kms/v2/api.proto


export interface DecryptRequest {
  'ciphertext'?: (Buffer | Uint8Array | string);
  'uid'?: (string);
  'keyId'?: (string);
  'annotations'?: ({[key: string]: Buffer | Uint8Array | string});
}

export interface DecryptRequest__Output {
  'ciphertext': (Buffer);
  'uid': (string);
  'keyId': (string);
  'annotations': ({[key: string]: Buffer});
}
