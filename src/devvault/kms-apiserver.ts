import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import protobuf from 'protobufjs';
import { encodeEncryptedObject, encryptedObjectProtoPath } from '../etcd-audit/encrypted-object.js';
import type { KmsClient } from '../kms/kms-client.js';

/** kube-apiserver's sizes in the data part of an extended-nonce AES-GCM value: HKDF info, GCM nonce, GCM tag. */
const INFO_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
/** EncryptedDEKSourceType HKDF_SHA256_XNONCE_AES_GCM_SEED: the wrapped source is a seed (KMSv2KDF). */
const SEED_SOURCE_TYPE = 1;

/** The prefix kube-apiserver writes before a KMS v2 EncryptedObject for the provider named `providerName`. */
export function kmsV2Prefix(providerName: string): string {
  return `k8s:enc:kms:v2:${providerName}:`;
}

let cachedType: protobuf.Type | undefined;
/** The EncryptedObject message from the proto file etcd-audit decodes with (one definition of the bytes). */
function encryptedObjectType(): protobuf.Type {
  cachedType ??= protobuf.loadSync(encryptedObjectProtoPath).lookupType('v2.EncryptedObject');
  return cachedType;
}

/** What kube-apiserver stores in etcd for one object under KMS v2 (the EncryptedObject's fields). */
export interface StoredObject {
  keyId: string;
  encryptedDekSource: Buffer;
  annotations: Record<string, Buffer>;
  /** HKDF info, GCM nonce and tag, ciphertext: the data part, encrypted under a key derived from the seed. */
  info: Buffer;
  nonce: Buffer;
  tag: Buffer;
  ciphertext: Buffer;
}

/**
 * A stand-in for kube-apiserver (tests, the demo) doing what kube-apiserver's KMS v2 envelope transformer does: one random 32-byte
 * seed per key_id, wrapped once by the plugin's Encrypt; each write derives a fresh AES-256-GCM
 * key from the seed with HKDF-SHA256 (expand) and random info, with the etcd key as the GCM
 * additional data; Status is polled and a changed key_id
 * makes a new seed (and checks that Encrypt's key_id is Status's); reads unwrap a stored seed
 * through Decrypt once and cache it. storedBytes and parseStoredBytes give and read the bytes
 * kube-apiserver keeps in etcd for such an object.
 */
export class ApiServerEmulator {
  private current?: { keyId: string; seed: Buffer; encryptedDekSource: Buffer; annotations: Record<string, Buffer> };
  private readonly seedCache = new Map<string, Buffer>();
  encryptCalls = 0;
  decryptCalls = 0;

  constructor(private readonly kms: KmsClient) {}

  /** One Status poll; re-seeds when the key_id changed. Returns the key_id in use. */
  async poll(): Promise<string> {
    const status = await this.kms.status();
    if (status.version !== 'v2') throw new Error(`Status version ${status.version}`);
    if (status.healthz !== 'ok') throw new Error(`plugin unhealthy: ${status.healthz}`);
    if (!this.current || this.current.keyId !== status.keyId) {
      const seed = randomBytes(32);
      const res = await this.kms.encrypt(seed, `seed-${this.encryptCalls}`);
      this.encryptCalls += 1;
      if (res.keyId !== status.keyId) throw new Error('Encrypt key_id differs from Status key_id: discarded');
      this.current = { keyId: res.keyId, seed, encryptedDekSource: res.ciphertext, annotations: res.annotations };
      this.seedCache.set(res.ciphertext.toString('hex'), seed);
    }
    return this.current.keyId;
  }

  async write(plaintext: Buffer, path: string): Promise<StoredObject> {
    if (!this.current) await this.poll();
    const { keyId, seed, encryptedDekSource, annotations } = this.current!;
    const info = randomBytes(INFO_BYTES);
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', dek(seed, info), nonce);
    cipher.setAAD(Buffer.from(path));
    const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return { keyId, encryptedDekSource, annotations, info, nonce, tag: cipher.getAuthTag(), ciphertext };
  }

  async read(object: StoredObject, path: string): Promise<Buffer> {
    const cacheKey = object.encryptedDekSource.toString('hex');
    let seed = this.seedCache.get(cacheKey);
    if (!seed) {
      seed = (await this.kms.decrypt({ ciphertext: object.encryptedDekSource, keyId: object.keyId, annotations: object.annotations, uid: `read-${this.decryptCalls}` })).plaintext;
      this.decryptCalls += 1;
      this.seedCache.set(cacheKey, seed);
    }
    const decipher = createDecipheriv('aes-256-gcm', dek(seed, object.info), object.nonce);
    decipher.setAAD(Buffer.from(path));
    decipher.setAuthTag(object.tag);
    return Buffer.concat([decipher.update(object.ciphertext), decipher.final()]);
  }
}

/**
 * The bytes kube-apiserver puts in etcd for `object`: `k8s:enc:kms:v2:<providerName>:` and the
 * protobuf EncryptedObject, whose encryptedData is the extended-nonce AES-GCM layout (HKDF info,
 * nonce, ciphertext, tag) and whose DEK source type says the wrapped bytes are a seed.
 */
export function storedBytes(object: StoredObject, providerName: string): Buffer {
  const envelope = encodeEncryptedObject({
    encryptedData: Buffer.concat([object.info, object.nonce, object.ciphertext, object.tag]),
    keyID: object.keyId,
    encryptedDEKSource: object.encryptedDekSource,
    annotations: object.annotations,
    encryptedDEKSourceType: SEED_SOURCE_TYPE,
  });
  return Buffer.concat([Buffer.from(kmsV2Prefix(providerName)), envelope]);
}

/** The inverse of storedBytes: what an apiserver reads back from etcd before Decrypt. Throws on anything else. */
export function parseStoredBytes(bytes: Uint8Array, providerName: string): StoredObject {
  const prefix = Buffer.from(kmsV2Prefix(providerName));
  const value = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (!value.subarray(0, prefix.length).equals(prefix)) throw new Error(`not a KMS v2 value of provider ${providerName}`);
  const type = encryptedObjectType();
  const fields = type.toObject(type.decode(value.subarray(prefix.length)), { bytes: Buffer, defaults: true }) as {
    encryptedData: Buffer;
    keyID: string;
    encryptedDEKSource: Buffer;
    annotations: Record<string, Buffer>;
    encryptedDEKSourceType: number;
  };
  if (fields.encryptedDEKSourceType !== SEED_SOURCE_TYPE) throw new Error('not a seed-derived (KMSv2KDF) EncryptedObject');
  const data = Buffer.from(fields.encryptedData);
  if (data.length < INFO_BYTES + NONCE_BYTES + TAG_BYTES) throw new Error('EncryptedObject data too short');
  return {
    keyId: fields.keyID,
    encryptedDekSource: Buffer.from(fields.encryptedDEKSource),
    annotations: Object.fromEntries(Object.entries(fields.annotations).map(([k, v]) => [k, Buffer.from(v)])),
    info: data.subarray(0, INFO_BYTES),
    nonce: data.subarray(INFO_BYTES, INFO_BYTES + NONCE_BYTES),
    ciphertext: data.subarray(INFO_BYTES + NONCE_BYTES, data.length - TAG_BYTES),
    tag: data.subarray(data.length - TAG_BYTES),
  };
}

/**
 * kube-apiserver's write key: HKDF-SHA256 *expand only* with the seed as the pseudorandom key and
 * the object's random info (no extract step, so not node's hkdfSync). 32 bytes are one HMAC block:
 * T(1) = HMAC-SHA256(seed, info || 0x01).
 */
function dek(seed: Buffer, info: Buffer): Buffer {
  return createHmac('sha256', seed).update(info).update(Buffer.from([1])).digest();
}
