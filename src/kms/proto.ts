import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { kmsProtoPath } from '../package-info.js';
import type { ProtoGrpcType } from '../generated/kms/api.js';

/**
 * Typed access to the generated KMS v2 messages (`npm run gen:proto`), so the plugin imports names
 * from here rather than from the generator's folder layout.
 */
export type { ProtoGrpcType as KmsProto } from '../generated/kms/api.js';
export type { StatusResponse } from '../generated/kms/v2/StatusResponse.js';
export type { EncryptRequest__Output as EncryptRequest } from '../generated/kms/v2/EncryptRequest.js';
export type { EncryptResponse } from '../generated/kms/v2/EncryptResponse.js';
export type { DecryptRequest__Output as DecryptRequest } from '../generated/kms/v2/DecryptRequest.js';
export type { DecryptResponse } from '../generated/kms/v2/DecryptResponse.js';
export type { KeyManagementServiceClient } from '../generated/kms/v2/KeyManagementService.js';

/** The same loader options as the CSI proto's (src/driver/proto.ts), matching the generator's flags. */
const LOADER_OPTIONS: protoLoader.Options = { keepCase: false, longs: String, enums: String, defaults: true, oneofs: true };

let cached: ProtoGrpcType | undefined;

/** The KMS v2 package (`v2`) from our own proto file, loaded once. */
export function loadKmsProto(): ProtoGrpcType {
  if (!cached) cached = grpc.loadPackageDefinition(protoLoader.loadSync(kmsProtoPath, LOADER_OPTIONS)) as unknown as ProtoGrpcType;
  return cached;
}
