import { createDecipheriv } from 'node:crypto';
import { PodvaultError } from '../errors/podvault-error.js';
import { mapLimit } from '../util/map-limit.js';
import type { DataKeyUnwrapper } from './data-keys.js';
import { DATA_KEY_BYTES, MAX_VALUE_BYTES, TAG_BYTES, WRAP_ALGORITHM } from './format.js';
import type { SealedMarker } from './markers.js';
import { SealedError } from './sealed-error.js';

/** Distinct data keys one call may unwrap (each is one vault call): a hostile text cannot make thousands. */
export const MAX_DATA_KEYS_PER_TEXT = 64;
/** Unwraps in flight at once. */
const UNWRAP_CONCURRENCY = 4;

const utf8 = new TextDecoder('utf-8', { fatal: true });

interface DataKeyGroup {
  keyId: string;
  wrappedKey: Uint8Array;
  markers: SealedMarker[];
}

/** Markers that share a key id and wrapped bytes share one data key: one unwrap for all of them. */
function groupByDataKey(markers: readonly SealedMarker[]): DataKeyGroup[] {
  const groups = new Map<string, DataKeyGroup>();
  for (const marker of markers) {
    const id = `${marker.keyId} ${Buffer.from(marker.wrappedKey).toString('base64')}`;
    const group = groups.get(id);
    if (group) group.markers.push(marker);
    else groups.set(id, { keyId: marker.keyId, wrappedKey: marker.wrappedKey, markers: [marker] });
  }
  return [...groups.values()];
}

/**
 * Open every marker: marker text → value. Each distinct wrapped data key is unwrapped exactly
 * once (at most MAX_DATA_KEYS_PER_TEXT of them, four at a time), then every value under it is
 * decrypted and authenticated, and the data key's bytes are zeroed. The first failure rejects the
 * whole call (no partial map), with a SealedError naming the marker's line, column and key id.
 */
export async function openMarkers(markers: readonly SealedMarker[], unwrapper: DataKeyUnwrapper, signal?: AbortSignal): Promise<Map<string, string>> {
  const groups = groupByDataKey(markers);
  if (groups.length > MAX_DATA_KEYS_PER_TEXT) {
    const first = groups[MAX_DATA_KEYS_PER_TEXT]?.markers[0];
    throw new SealedError('resource-exhausted', `more than ${MAX_DATA_KEYS_PER_TEXT} distinct data keys in one text (each needs a vault call); seal a file's values in one run (podvault seal --file) so they share one`, first);
  }
  const values = new Map<string, string>();
  await mapLimit(groups, UNWRAP_CONCURRENCY, async (group) => {
    const first = group.markers[0] as SealedMarker;
    let dataKey: Uint8Array;
    try {
      dataKey = await unwrapper.unwrap(group.keyId, WRAP_ALGORITHM, group.wrappedKey, signal);
    } catch (err) {
      const kind = err instanceof PodvaultError ? err.kind : 'unavailable';
      const why = err instanceof PodvaultError ? err.message : `unwrapKey failed (${(err as Error)?.name ?? 'error'})`;
      throw new SealedError(kind, `key ${group.keyId}: cannot unwrap the marker's data key: ${why}`, first, { cause: err });
    }
    try {
      if (dataKey.length !== DATA_KEY_BYTES) throw new SealedError('invalid-argument', `key ${group.keyId}: the unwrapped data key is ${dataKey.length} bytes, not ${DATA_KEY_BYTES}`, first);
      for (const marker of group.markers) {
        if (!values.has(marker.text)) values.set(marker.text, openOne(marker, dataKey));
      }
    } finally {
      dataKey.fill(0);
    }
  });
  return values;
}

function openOne(marker: SealedMarker, dataKey: Uint8Array): string {
  const at = { line: marker.line, column: marker.column };
  const ciphertext = marker.sealed.subarray(0, marker.sealed.length - TAG_BYTES);
  if (ciphertext.length > MAX_VALUE_BYTES) throw new SealedError('invalid-argument', `key ${marker.keyId}: the value is larger than ${MAX_VALUE_BYTES} bytes`, at);
  let plain: Buffer;
  try {
    const decipher = createDecipheriv('aes-256-gcm', dataKey, marker.nonce, { authTagLength: TAG_BYTES });
    decipher.setAAD(marker.aad);
    decipher.setAuthTag(marker.sealed.subarray(marker.sealed.length - TAG_BYTES));
    plain = Buffer.concat([decipher.update(ciphertext), decipher.final()]);
  } catch {
    throw new SealedError('invalid-argument', `key ${marker.keyId}: the marker does not authenticate (it was edited, or is not one podvault sealed with this data key)`, at);
  }
  try {
    return utf8.decode(plain);
  } catch {
    throw new SealedError('invalid-argument', `key ${marker.keyId}: the value is not UTF-8 text`, at);
  } finally {
    plain.fill(0);
  }
}
