import { createCipheriv, randomBytes } from 'node:crypto';
import type { DataKeyWrapper } from './data-keys.js';
import { additionalData, DATA_KEY_BYTES, encodeMarker, MAX_VALUE_BYTES, NONCE_BYTES, TAG_BYTES, WRAP_ALGORITHM, WRAPPED_KEY_SIZES } from './format.js';
import { parseVersionedKeyId } from './sealed-key-id.js';
import { SealedError } from './sealed-error.js';

export interface SealedValues {
  /** One marker per value, in order. */
  markers: string[];
  /** The key version that wrapped the run's data key. */
  versionedKeyId: string;
}

/**
 * Seal `values` under one fresh 256-bit data key wrapped once by `keyId` (so rendering them
 * later costs one unwrap), each with its own random 96-bit nonce; a nonce is never used twice in
 * a run (a repeat is drawn again). The data key is zeroed before returning. Errors name the
 * value's index, never its content.
 */
export async function sealValues(values: readonly string[], keyId: string, wrapper: DataKeyWrapper, signal?: AbortSignal): Promise<SealedValues> {
  const plains = values.map((value, i) => {
    const bytes = Buffer.from(value, 'utf8');
    if (bytes.length > MAX_VALUE_BYTES) throw new SealedError('invalid-argument', `value ${i + 1} is ${bytes.length} bytes; a sealed value is at most ${MAX_VALUE_BYTES} bytes (1 MiB)`);
    return bytes;
  });
  const dataKey = randomBytes(DATA_KEY_BYTES);
  try {
    const { versionedKeyId, wrapped } = await wrapper.wrap(keyId, WRAP_ALGORITHM, dataKey, signal);
    const ref = parseVersionedKeyId(versionedKeyId);
    if (typeof ref === 'string') throw new SealedError('internal', `key ${keyId}: the vault wrapped with key id ${JSON.stringify(versionedKeyId.slice(0, 200))}, which ${ref}`);
    if (!WRAPPED_KEY_SIZES.includes(wrapped.length)) throw new SealedError('internal', `key ${versionedKeyId}: the wrapped data key is ${wrapped.length} bytes, not an RSA 2048/3072/4096 size`);
    const canonical = `${ref.vaultUrl}/keys/${ref.name}/${ref.version}`;
    const aad = additionalData(canonical, wrapped);
    const used = new Set<string>();
    const markers = plains.map((plain) => {
      let nonce = randomBytes(NONCE_BYTES);
      while (used.has(nonce.toString('hex'))) nonce = randomBytes(NONCE_BYTES);
      used.add(nonce.toString('hex'));
      const cipher = createCipheriv('aes-256-gcm', dataKey, nonce, { authTagLength: TAG_BYTES });
      cipher.setAAD(aad);
      const sealed = Buffer.concat([cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
      plain.fill(0);
      return encodeMarker(aad, nonce, sealed);
    });
    return { markers, versionedKeyId: canonical };
  } finally {
    dataKey.fill(0);
    for (const p of plains) p.fill(0);
  }
}
