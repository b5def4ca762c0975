import { constants, createPublicKey, generateKeyPairSync, privateDecrypt, publicEncrypt } from 'node:crypto';
import type { JsonWebKey, KeyObject } from 'node:crypto';

/** The RSA algorithms Key Vault offers for wrapkey/unwrapkey/encrypt/decrypt (RSA-OAEP-256 recommended). */
export const RSA_ALGORITHMS = ['RSA-OAEP-256', 'RSA-OAEP', 'RSA1_5'] as const;
export type RsaAlgorithm = (typeof RSA_ALGORITHMS)[number];

/** The four key operations, by their REST path segment. */
export const KEY_OPERATIONS = ['wrapkey', 'unwrapkey', 'encrypt', 'decrypt'] as const;
export type KeyOperation = (typeof KEY_OPERATIONS)[number];

/** A refusal with Key Vault's HTTP status and error code (`BadParameter`, ...). */
export class KeyOperationError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface KeySpec {
  kty: 'RSA' | 'EC';
  size: number;
  crv: 'P-256' | 'P-384' | 'P-521';
}

/** A fresh key pair: the public JWK Key Vault serves, the private key it keeps. */
export function generateKeyVersion(spec: KeySpec): { jwk: JsonWebKey; privateKey: KeyObject } {
  const pair = spec.kty === 'RSA' ? generateKeyPairSync('rsa', { modulusLength: spec.size }) : generateKeyPairSync('ec', { namedCurve: spec.crv });
  return { jwk: pair.publicKey.export({ format: 'jwk' }), privateKey: pair.privateKey };
}

/** The spec of an existing version, for a rotation that keeps the key's type and size. */
export function specOf(privateKey: KeyObject): KeySpec {
  const details = privateKey.asymmetricKeyDetails ?? {};
  return {
    kty: privateKey.asymmetricKeyType === 'rsa' ? 'RSA' : 'EC',
    size: details.modulusLength ?? 2048,
    crv: details.namedCurve === 'secp384r1' ? 'P-384' : details.namedCurve === 'secp521r1' ? 'P-521' : 'P-256',
  };
}

/**
 * One RSA key operation with node:crypto, as Key Vault performs it: wrapkey = encrypt and
 * unwrapkey = decrypt for RSA keys (one block, no envelope). Failures are Key Vault's 400s.
 */
export function runKeyOperation(op: KeyOperation, alg: string, privateKey: KeyObject, input: Buffer): Buffer {
  if (privateKey.asymmetricKeyType !== 'rsa') throw new KeyOperationError(400, 'BadParameter', `Operation ${op} is not supported for this key type.`);
  if (!(RSA_ALGORITHMS as readonly string[]).includes(alg)) throw new KeyOperationError(400, 'BadParameter', `Invalid algorithm: ${alg.slice(0, 40)}`);
  const algorithm = alg as RsaAlgorithm;
  const forward = op === 'wrapkey' || op === 'encrypt';
  const bytes = (privateKey.asymmetricKeyDetails?.modulusLength ?? 2048) / 8;
  if (forward) {
    const max = bytes - (algorithm === 'RSA-OAEP-256' ? 66 : algorithm === 'RSA-OAEP' ? 42 : 11);
    if (input.length === 0 || input.length > max) throw new KeyOperationError(400, 'BadParameter', `The value is ${input.length} bytes; ${algorithm} with this key takes 1 to ${max}.`);
    return publicEncrypt({ key: createPublicKey(privateKey), ...paddingOf(algorithm) }, input);
  }
  if (input.length !== bytes) throw new KeyOperationError(400, 'BadParameter', `The ciphertext is ${input.length} bytes; this key's ciphertexts are ${bytes}.`);
  try {
    // Node 20 refuses PKCS#1 v1.5 private decryption (CVE-2023-46809); dev-vault strips the padding itself.
    if (algorithm === 'RSA1_5') return stripPkcs1v15(privateDecrypt({ key: privateKey, padding: constants.RSA_NO_PADDING }, input));
    return privateDecrypt({ key: privateKey, ...paddingOf(algorithm) }, input);
  } catch (err) {
    if (err instanceof KeyOperationError) throw err;
    throw new KeyOperationError(400, 'BadParameter', 'Decryption failed: the ciphertext does not match this key version and algorithm.');
  }
}

function paddingOf(algorithm: RsaAlgorithm): { padding: number; oaepHash?: string } {
  if (algorithm === 'RSA-OAEP-256') return { padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' };
  if (algorithm === 'RSA-OAEP') return { padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' };
  return { padding: constants.RSA_PKCS1_PADDING };
}

/** EM = 0x00 0x02 PS (≥ 8 non-zero bytes) 0x00 M (RFC 8017 §7.2.2). */
function stripPkcs1v15(em: Buffer): Buffer {
  const separator = em.indexOf(0, 2);
  if (em[0] !== 0 || em[1] !== 2 || separator < 10) throw new KeyOperationError(400, 'BadParameter', 'Decryption failed: the ciphertext does not match this key version and algorithm.');
  return em.subarray(separator + 1);
}
