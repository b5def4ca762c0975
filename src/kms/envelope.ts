import { failedPrecondition, internal, invalidArgument } from '../errors/podvault-error.js';
import type { KeyRef } from './key-ref.js';
import { kmsKeyId, versionOf } from './key-ref.js';
import { WRAP_ALGORITHM } from './key-vault-wrapper.js';

/**
 * What the plugin stores beside a wrapped seed, and the checks every request passes before any
 * vault call. Annotations are stored in etcd in plaintext: they carry ids, never key material.
 */
export const ANNOTATION_KEY_ID = 'key-id.kms.podvault.dev';
export const ANNOTATION_ALGORITHM = 'algorithm.kms.podvault.dev';
export const ANNOTATION_VERSION = 'version.kms.podvault.dev';
/** The format of the annotations above; a later format gets a new value. */
export const ENVELOPE_VERSION = '1';

/** The limits kube-apiserver enforces on a KMS v2 plugin's answers (envelope.go), enforced here too. */
export const MAX_CIPHERTEXT_BYTES = 1024;
export const MAX_KEY_ID_BYTES = 1024;
export const MAX_ANNOTATIONS_BYTES = 32 * 1024;
/** RSA-OAEP-256 with a 2048-bit key (the smallest Key Vault RSA key) takes at most 190 bytes; kube-apiserver sends 32. */
export const MAX_PLAINTEXT_BYTES = 190;

const FQDN_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** An annotation key must be a fully qualified domain name (lower case, at least two labels, ≤ 253). */
export function isFqdn(key: string): boolean {
  const labels = key.split('.');
  return key.length <= 253 && labels.length >= 2 && labels.every((l) => FQDN_LABEL.test(l));
}

export function checkPlaintext(plaintext: Buffer): void {
  if (plaintext.length === 0) throw invalidArgument('Encrypt: the plaintext is empty');
  if (plaintext.length > MAX_PLAINTEXT_BYTES) throw invalidArgument(`Encrypt: the plaintext is ${plaintext.length} bytes; RSA-OAEP-256 wraps at most ${MAX_PLAINTEXT_BYTES} (kube-apiserver sends a 32-byte seed)`);
}

/** What unwrapKey gave back must be something Encrypt could have wrapped: never empty or oversized. */
export function checkUnwrapped(plaintext: Buffer, version: string): void {
  if (plaintext.length === 0 || plaintext.length > MAX_PLAINTEXT_BYTES) throw internal(`Decrypt: key version ${version}: unwrapKey answered ${plaintext.length} bytes; a wrapped seed is 1 to ${MAX_PLAINTEXT_BYTES}`);
}

export function annotationsFor(versionedKid: string): Record<string, Buffer> {
  return {
    [ANNOTATION_KEY_ID]: Buffer.from(versionedKid),
    [ANNOTATION_ALGORITHM]: Buffer.from(WRAP_ALGORITHM),
    [ANNOTATION_VERSION]: Buffer.from(ENVELOPE_VERSION),
  };
}

function annotationsSize(annotations: Record<string, Buffer>): number {
  return Object.entries(annotations).reduce((sum, [k, v]) => sum + Buffer.byteLength(k) + v.length, 0);
}

function checkAnnotations(annotations: Record<string, Buffer>, what: string, fail: (message: string) => Error): void {
  for (const key of Object.keys(annotations)) {
    if (!isFqdn(key)) throw fail(`${what}: annotation key ${JSON.stringify(key.slice(0, 80))} is not a fully qualified domain name`);
  }
  const size = annotationsSize(annotations);
  if (size > MAX_ANNOTATIONS_BYTES) throw fail(`${what}: the annotations are ${size} bytes; at most ${MAX_ANNOTATIONS_BYTES}`);
}

/** The plugin's own Encrypt answer, checked against kube-apiserver's limits before it is sent. */
export function checkEncryptAnswer(ciphertext: Buffer, keyId: string, annotations: Record<string, Buffer>): void {
  if (ciphertext.length === 0 || ciphertext.length > MAX_CIPHERTEXT_BYTES) throw internal(`Encrypt: Key Vault's wrapped key is ${ciphertext.length} bytes; kube-apiserver takes 1 to ${MAX_CIPHERTEXT_BYTES}`);
  if (keyId.length === 0 || Buffer.byteLength(keyId) > MAX_KEY_ID_BYTES) throw internal('Encrypt: the key_id is empty or longer than 1 KiB');
  checkAnnotations(annotations, 'Encrypt', internal);
}

/**
 * A Decrypt request, checked before any vault call: sizes, annotation keys, the envelope format
 * and algorithm, the key id it names (a version of the configured key, else refused), and that
 * `key_id` is the one that version has (annotations changed after Encrypt are caught here).
 * Returns the key version to unwrap with.
 */
export function checkDecryptRequest(request: { ciphertext: Buffer; keyId: string; annotations: Record<string, Buffer> }, key: KeyRef): string {
  const { ciphertext, keyId, annotations } = request;
  if (ciphertext.length === 0) throw invalidArgument('Decrypt: the ciphertext is empty');
  if (ciphertext.length > MAX_CIPHERTEXT_BYTES) throw invalidArgument(`Decrypt: the ciphertext is ${ciphertext.length} bytes; at most ${MAX_CIPHERTEXT_BYTES}`);
  if (keyId.length === 0) throw invalidArgument('Decrypt: key_id is empty');
  if (Buffer.byteLength(keyId) > MAX_KEY_ID_BYTES) throw invalidArgument(`Decrypt: key_id is longer than ${MAX_KEY_ID_BYTES} bytes`);
  checkAnnotations(annotations, 'Decrypt', invalidArgument);

  const format = annotations[ANNOTATION_VERSION]?.toString();
  if (format !== ENVELOPE_VERSION) throw invalidArgument(`Decrypt: annotation ${ANNOTATION_VERSION} is ${format === undefined ? 'missing' : JSON.stringify(format.slice(0, 20))}; this plugin reads format ${ENVELOPE_VERSION}`);
  const algorithm = annotations[ANNOTATION_ALGORITHM]?.toString();
  if (algorithm !== WRAP_ALGORITHM) throw invalidArgument(`Decrypt: annotation ${ANNOTATION_ALGORITHM} is ${algorithm === undefined ? 'missing' : JSON.stringify(algorithm.slice(0, 40))}; only ${WRAP_ALGORITHM} is accepted`);
  const kid = annotations[ANNOTATION_KEY_ID]?.toString();
  if (kid === undefined) throw invalidArgument(`Decrypt: annotation ${ANNOTATION_KEY_ID} is missing`);
  const version = versionOf(key, kid);
  if (version === undefined) {
    throw failedPrecondition(`Decrypt: the object was wrapped by key ${JSON.stringify(kid.slice(0, 300))}, which is not a version of the configured key ${key.vaultUrl}/keys/${key.name}; refused`);
  }
  if (kmsKeyId(kid) !== keyId) throw invalidArgument(`Decrypt: key_id does not match annotation ${ANNOTATION_KEY_ID} (version ${version}): the stored object's annotations or key_id were changed; refused`);
  return version;
}
