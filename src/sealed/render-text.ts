import type { DataKeyUnwrapper, DataKeyWrapper } from './data-keys.js';
import { findMarkers } from './markers.js';
import { openMarkers } from './open-markers.js';
import { findS5Markers, openS5Marker } from './s5-aes.js';
import type { S5Marker } from './s5-aes.js';
import { sealValues } from './seal-values.js';
import { SealedError } from './sealed-error.js';

interface Replacement {
  index: number;
  length: number;
  value: string;
}

/** `text` with each replacement's span swapped for its value (spans in order, not overlapping). */
function splice(text: string, replacements: Replacement[]): string {
  replacements.sort((a, b) => a.index - b.index);
  const parts: string[] = [];
  let from = 0;
  for (const r of replacements) {
    parts.push(text.slice(from, r.index), r.value);
    from = r.index + r.length;
  }
  parts.push(text.slice(from));
  return parts.join('');
}

export interface RenderOptions {
  unwrapper: DataKeyUnwrapper;
  /** s5's aes key; without it an `{{s5:…}}` marker is an error. */
  s5AesKey?: Buffer;
  signal?: AbortSignal;
}

function s5KeyMissing(marker: S5Marker): SealedError {
  return new SealedError('failed-precondition', '{{s5:…}} marker but no s5 AES key: set S5_AES_KEY (or --s5-aes-key) to render s5 aes markers', marker);
}

/**
 * Every `{{pv:…}}` (and s5 aes `{{s5:…}}`) marker of `text` replaced by its value; the rest of the
 * text is kept byte for byte. All markers are read and opened before anything is replaced, so a
 * failure anywhere rejects the whole text (a SealedError with the marker's position).
 */
export async function renderText(text: string, options: RenderOptions): Promise<string> {
  const pv = findMarkers(text);
  const s5 = findS5Markers(text);
  if (s5.length > 0 && !options.s5AesKey) throw s5KeyMissing(s5[0] as S5Marker);
  const replacements: Replacement[] = s5.map((m) => ({ index: m.index, length: m.text.length, value: openS5Marker(m, options.s5AesKey as Buffer) }));
  if (pv.length > 0) {
    const values = await openMarkers(pv, options.unwrapper, options.signal);
    for (const m of pv) replacements.push({ index: m.index, length: m.text.length, value: values.get(m.text) as string });
  }
  return splice(text, replacements);
}

export interface ResealOptions {
  s5AesKey: Buffer;
  wrapper: DataKeyWrapper;
  /** `https://<vault>/keys/<name>[/<version>]`. */
  keyId: string;
  signal?: AbortSignal;
}

/**
 * Every s5 aes marker of `text` turned into a `{{pv:…}}` marker, all under one data key; `{{pv:…}}`
 * markers (checked to be well formed) and all other text are kept as they are.
 */
export async function resealText(text: string, options: ResealOptions): Promise<{ text: string; count: number; versionedKeyId?: string }> {
  findMarkers(text);
  const s5 = findS5Markers(text);
  if (s5.length === 0) return { text, count: 0 };
  const values = s5.map((m) => openS5Marker(m, options.s5AesKey));
  const sealed = await sealValues(values, options.keyId, options.wrapper, options.signal);
  const out = splice(text, s5.map((m, i) => ({ index: m.index, length: m.text.length, value: sealed.markers[i] as string })));
  return { text: out, count: s5.length, versionedKeyId: sealed.versionedKeyId };
}
