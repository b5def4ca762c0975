// Original file: proto/kms/v2/api.proto


export interface StatusResponse {
  'version'?: (string);
  'healthz'?: (string);
  'keyId'?: (string);
}

export interface StatusResponse__Output {
  'version': (string);
  'healthz': (string);
  'keyId': (string);
}
