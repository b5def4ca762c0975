import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import type { KmsClient } from '../kms/kms-client.js';

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
 * key from the seed with HKDF-SHA256 and random info; Status is polled and a changed key_id
 * makes a new seed (and checks that Encrypt's key_id is Status's); reads unwrap a stored seed
 * through Decrypt once and cache it.
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
    const info = randomBytes(32);
    const nonce = randomBytes(12);
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

function dek(seed: Buffer, info: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', seed, Buffer.alloc(0), info, 32));
}
