import { join } from 'node:path';
import protobuf from 'protobufjs';
import { packageRoot } from '../package-info.js';

/** Our copy of kube-apiserver's KMS v2 EncryptedObject (see the file for its provenance). */
export const encryptedObjectProtoPath = join(packageRoot, 'proto', 'storage', 'kmsv2-encrypted-object.proto');

/** kube-apiserver refuses a key_id or a wrapped DEK source over 1 KiB; so does the audit. */
export const MAX_KEY_ID_BYTES = 1024;
export const MAX_DEK_SOURCE_BYTES = 1024;

/** The public parts of a stored KMS v2 object: never the data, the wrapped DEK or annotation values. */
export interface EncryptedObjectSummary {
  keyId: string;
  dekSourceType: 'AES_GCM_KEY' | 'HKDF_SHA256_XNONCE_AES_GCM_SEED' | 'other';
}

let cachedType: protobuf.Type | undefined;

function encryptedObjectType(): protobuf.Type {
  cachedType ??= protobuf.loadSync(encryptedObjectProtoPath).lookupType('v2.EncryptedObject');
  return cachedType;
}

/**
 * Decodes the bytes after `k8s:enc:kms:v2:<name>:` and returns the key id, or undefined when they
 * are not an EncryptedObject kube-apiserver would accept (its own checks: key id non-empty and
 * ≤ 1 KiB, data and DEK source non-empty, DEK source ≤ 1 KiB). The input is one etcd value, so its
 * size is bounded by the page it came in; protobufjs slices byte fields without copying them and
 * nothing decoded here is returned except the key id.
 */
export function decodeEncryptedObject(bytes: Uint8Array): EncryptedObjectSummary | undefined {
  let message: protobuf.Message;
  try {
    message = encryptedObjectType().decode(bytes);
  } catch {
    return undefined;
  }
  const fields = message as unknown as {
    encryptedData?: Uint8Array;
    keyID?: string;
    encryptedDEKSource?: Uint8Array;
    encryptedDEKSourceType?: number;
  };
  const keyId = fields.keyID ?? '';
  if (keyId.length === 0 || Buffer.byteLength(keyId, 'utf8') > MAX_KEY_ID_BYTES) return undefined;
  if (!fields.encryptedData || fields.encryptedData.length === 0) return undefined;
  const source = fields.encryptedDEKSource;
  if (!source || source.length === 0 || source.length > MAX_DEK_SOURCE_BYTES) return undefined;
  const type = fields.encryptedDEKSourceType ?? 0;
  return { keyId, dekSourceType: type === 0 ? 'AES_GCM_KEY' : type === 1 ? 'HKDF_SHA256_XNONCE_AES_GCM_SEED' : 'other' };
}

/** Encodes an EncryptedObject: for tests and the bench, which write what kube-apiserver writes. */
export function encodeEncryptedObject(fields: {
  encryptedData: Uint8Array;
  keyID: string;
  encryptedDEKSource: Uint8Array;
  annotations?: Record<string, Uint8Array>;
  encryptedDEKSourceType?: number;
}): Buffer {
  const type = encryptedObjectType();
  return Buffer.from(type.encode(type.create(fields)).finish());
}
