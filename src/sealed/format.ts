import { SealedError } from './sealed-error.js';
import type { MarkerPosition } from './sealed-error.js';
import { parseVersionedKeyId } from './sealed-key-id.js';

/**
 * The payload of a `{{pv:<base64url>}}` marker, format version 1 (docs/sealed-config.md):
 *
 *     offset  size  field
 *     0       1     format version (1)
 *     1       1     algorithm suite (1: data key wrapped with RSA-OAEP-256, value in AES-256-GCM)
 *     2       2     key id length K (big-endian)
 *     4       K     versioned key id, ASCII: https://<vault>/keys/<name>/<version>
 *     4+K     2     wrapped data key length W (256, 384 or 512: RSA 2048, 3072, 4096)
 *     6+K     W     the data key wrapped by the key version
 *     6+K+W   12    nonce (random, one per value)
 *     18+K+W  N+16  AES-256-GCM ciphertext of the N-byte UTF-8 value, then its 16-byte tag
 *
 * Bytes 0 to 6+K+W (the header, the key id and the wrapped key) are the GCM additional data:
 * a marker edited to name another key, algorithm or version fails authentication.
 */
export const FORMAT_VERSION = 1;
export const SUITE_RSA_OAEP_256_A256GCM = 1;
export const WRAP_ALGORITHM = 'RSA-OAEP-256';
export const DATA_KEY_BYTES = 32;
export const NONCE_BYTES = 12;
export const TAG_BYTES = 16;
export const MAX_KEY_ID_BYTES = 512;
export const WRAPPED_KEY_SIZES: readonly number[] = [256, 384, 512];
/** Largest value a marker may hold: 1 MiB of UTF-8. */
export const MAX_VALUE_BYTES = 1024 * 1024;
const MAX_PAYLOAD_BYTES = 6 + MAX_KEY_ID_BYTES + 512 + NONCE_BYTES + MAX_VALUE_BYTES + TAG_BYTES;
export const MARKER_PREFIX = '{{pv:';
export const MARKER_SUFFIX = '}}';
/** Longest marker text, braces included: the unpadded base64url of the largest payload. */
export const MAX_MARKER_CHARS = MARKER_PREFIX.length + Math.ceil((MAX_PAYLOAD_BYTES * 4) / 3) + MARKER_SUFFIX.length;

export interface SealedPayload {
  keyId: string;
  algorithm: typeof WRAP_ALGORITHM;
  wrappedKey: Uint8Array;
  nonce: Uint8Array;
  /** Ciphertext followed by the 16-byte tag. */
  sealed: Uint8Array;
  /** The GCM additional data: header, key id and wrapped key. */
  aad: Uint8Array;
}

function header(keyId: string, wrappedKey: Uint8Array): Buffer {
  const kid = Buffer.from(keyId, 'ascii');
  const out = Buffer.alloc(6 + kid.length + wrappedKey.length);
  out[0] = FORMAT_VERSION;
  out[1] = SUITE_RSA_OAEP_256_A256GCM;
  out.writeUInt16BE(kid.length, 2);
  kid.copy(out, 4);
  out.writeUInt16BE(wrappedKey.length, 4 + kid.length);
  out.set(wrappedKey, 6 + kid.length);
  return out;
}

/** The additional data a value sealed under `keyId` and `wrappedKey` is bound to. */
export function additionalData(keyId: string, wrappedKey: Uint8Array): Buffer {
  return header(keyId, wrappedKey);
}

export function encodeMarker(aad: Uint8Array, nonce: Uint8Array, sealed: Uint8Array): string {
  return `${MARKER_PREFIX}${Buffer.concat([aad, nonce, sealed]).toString('base64url')}${MARKER_SUFFIX}`;
}

const BASE64URL = /^[A-Za-z0-9_-]*$/;

/**
 * The payload of one marker's base64url body, checked field by field before any crypto: the
 * version, the suite, a key id that is a versioned Key Vault key URL, a wrapped key of an RSA
 * size, a nonce and at least a tag. Errors name the position (and the key id once it is read).
 */
export function decodePayload(body: string, at: MarkerPosition): SealedPayload {
  const bad = (reason: string): SealedError => new SealedError('invalid-argument', `malformed {{pv:…}} marker: ${reason}`, at);
  if (body.length + MARKER_PREFIX.length + MARKER_SUFFIX.length > MAX_MARKER_CHARS) throw bad(`longer than ${MAX_MARKER_CHARS} characters (values are at most ${MAX_VALUE_BYTES} bytes)`);
  if (!BASE64URL.test(body) || body.length % 4 === 1) throw bad('the payload is not base64url');
  const bytes = Buffer.from(body, 'base64url');
  // Refuse a non-canonical encoding (unused trailing bits set): one payload, one text.
  if (bytes.toString('base64url') !== body) throw bad('the payload is not canonical base64url');
  if (bytes.length < 4) throw bad('too short');
  if (bytes[0] !== FORMAT_VERSION) throw bad(`format version ${bytes[0]} is not known (this podvault reads version ${FORMAT_VERSION})`);
  if (bytes[1] !== SUITE_RSA_OAEP_256_A256GCM) throw bad(`algorithm suite ${bytes[1]} is not known (this podvault reads ${SUITE_RSA_OAEP_256_A256GCM}: RSA-OAEP-256 and AES-256-GCM)`);
  const kidLength = bytes.readUInt16BE(2);
  if (kidLength === 0 || kidLength > MAX_KEY_ID_BYTES) throw bad(`key id length ${kidLength} is outside 1-${MAX_KEY_ID_BYTES}`);
  if (bytes.length < 6 + kidLength) throw bad('too short for its key id');
  const kidBytes = bytes.subarray(4, 4 + kidLength);
  if (!kidBytes.every((b) => b >= 0x21 && b <= 0x7e)) throw bad('the key id is not printable ASCII');
  const keyId = kidBytes.toString('ascii');
  const parsed = parseVersionedKeyId(keyId);
  if (typeof parsed === 'string') throw bad(`key id ${JSON.stringify(keyId)} ${parsed}`);
  const wrappedLength = bytes.readUInt16BE(4 + kidLength);
  if (!WRAPPED_KEY_SIZES.includes(wrappedLength)) throw bad(`key ${keyId}: wrapped data key of ${wrappedLength} bytes is not an RSA 2048/3072/4096 size`);
  const nonceAt = 6 + kidLength + wrappedLength;
  if (bytes.length < nonceAt + NONCE_BYTES + TAG_BYTES) throw bad(`key ${keyId}: too short for its nonce and tag`);
  return {
    keyId,
    algorithm: WRAP_ALGORITHM,
    wrappedKey: bytes.subarray(6 + kidLength, nonceAt),
    nonce: bytes.subarray(nonceAt, nonceAt + NONCE_BYTES),
    sealed: bytes.subarray(nonceAt + NONCE_BYTES),
    aad: bytes.subarray(0, nonceAt),
  };
}
