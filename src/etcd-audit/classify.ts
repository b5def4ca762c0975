import { decodeEncryptedObject } from './encrypted-object.js';

/** How a stored value is protected, as far as its prefix (and, for KMS v2, its envelope) tells. */
export type Classification =
  | { provider: 'identity'; encoding: 'protobuf' | 'json' }
  | { provider: 'aescbc' | 'aesgcm' | 'secretbox' | 'kms-v1'; configName: string }
  | { provider: 'kms-v2'; configName: string; keyId: string }
  | { provider: 'unknown'; reason: UnknownReason };

export type UnknownReason =
  /** No prefix the audit knows. */
  | 'unrecognised'
  /** A `k8s:enc:` prefix whose provider name is missing, too long or not printable. */
  | 'bad-config-name'
  /** `k8s:enc:kms:v2:<name>:` followed by bytes that are not an EncryptedObject kube-apiserver accepts. */
  | 'bad-kms-v2-envelope';

/** Kubernetes' protobuf serialisation starts with these four bytes (runtime/serializer/protobuf). */
const PROTOBUF_MAGIC = Buffer.from('k8s\0', 'latin1');

/** The transformer prefixes kube-apiserver writes, each followed by `<name>:` (k8s.io/apiserver storage/value/encrypt). */
const PREFIXES: ReadonlyArray<readonly [Buffer, 'aescbc' | 'aesgcm' | 'secretbox' | 'kms-v1' | 'kms-v2']> = [
  [Buffer.from('k8s:enc:aescbc:v1:'), 'aescbc'],
  [Buffer.from('k8s:enc:aesgcm:v1:'), 'aesgcm'],
  [Buffer.from('k8s:enc:secretbox:v1:'), 'secretbox'],
  [Buffer.from('k8s:enc:kms:v1:'), 'kms-v1'],
  [Buffer.from('k8s:enc:kms:v2:'), 'kms-v2'],
];

/** Provider and key names are printed, so only short printable ASCII is read as one. */
const MAX_CONFIG_NAME = 253;
const COLON = 0x3a;

/**
 * Classifies one etcd value. It looks at the first bytes only (and, for KMS v2, decodes the
 * envelope for its key id); it never copies, returns or logs any part of the value other than the
 * provider name of a prefix and a KMS v2 key id, which kube-apiserver stores in the clear.
 */
export function classifyValue(value: Uint8Array): Classification {
  const bytes = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  if (bytes.subarray(0, PROTOBUF_MAGIC.length).equals(PROTOBUF_MAGIC)) return { provider: 'identity', encoding: 'protobuf' };
  if (looksLikeJsonObject(bytes)) return { provider: 'identity', encoding: 'json' };
  for (const [prefix, provider] of PREFIXES) {
    if (!bytes.subarray(0, prefix.length).equals(prefix)) continue;
    const end = bytes.indexOf(COLON, prefix.length);
    if (end < 0 || end === prefix.length || end - prefix.length > MAX_CONFIG_NAME) return { provider: 'unknown', reason: 'bad-config-name' };
    const nameBytes = bytes.subarray(prefix.length, end);
    if (!nameBytes.every((b) => b > 0x20 && b < 0x7f)) return { provider: 'unknown', reason: 'bad-config-name' };
    const configName = nameBytes.toString('ascii');
    if (provider !== 'kms-v2') return { provider, configName };
    const envelope = decodeEncryptedObject(bytes.subarray(end + 1));
    if (!envelope) return { provider: 'unknown', reason: 'bad-kms-v2-envelope' };
    return { provider, configName, keyId: envelope.keyId };
  }
  return { provider: 'unknown', reason: 'unrecognised' };
}

/** kube-apiserver's JSON storage media type: an object, possibly after whitespace. */
function looksLikeJsonObject(bytes: Buffer): boolean {
  for (const b of bytes.subarray(0, 64)) {
    if (b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d) continue;
    return b === 0x7b;
  }
  return false;
}
