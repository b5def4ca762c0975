import { createDecipheriv } from 'node:crypto';
import { MAX_VALUE_BYTES } from './format.js';
import { MAX_MARKERS_PER_TEXT } from './markers.js';
import { SealedError } from './sealed-error.js';

/**
 * s5's `aes` engine (mvisonneau/s5, pkg/cipher/aes and pkg/cipher/engine.go), read here so its
 * users can render and reseal: a marker is `{{s5:B}}` or `{{ s5:B }}` (one optional whitespace
 * character inside each brace pair), B is standard base64 of the ASCII text `hex(ct‖tag):hex(nonce)`,
 * AES-GCM with a 12-byte nonce and a 16-byte tag, no additional data, under a hex key of 16, 24 or
 * 32 bytes (`S5_AES_KEY`).
 */
const S5_MARKER = /\{\{\s?s5:([A-Za-z0-9+\\/=]*)\s?\}\}/g;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
/** An s5 value is at most 1 MiB too: its base64(hex) is under 2.7 million characters. */
const MAX_S5_BODY = Math.ceil(((MAX_VALUE_BYTES + TAG_BYTES + NONCE_BYTES) * 2 + 1) * 4 / 3) + 4;

export interface S5Marker {
  text: string;
  body: string;
  line: number;
  column: number;
  index: number;
}

/** Every s5 marker of `text` (what s5's own regex matches), with its position. */
export function findS5Markers(text: string): S5Marker[] {
  const found: S5Marker[] = [];
  let line = 1;
  let lineStart = 0;
  let scanned = 0;
  for (const match of text.matchAll(S5_MARKER)) {
    const at = match.index;
    for (let nl = text.indexOf('\n', scanned); nl !== -1 && nl < at; nl = text.indexOf('\n', nl + 1)) {
      line += 1;
      lineStart = nl + 1;
    }
    scanned = at;
    const position = { line, column: at - lineStart + 1 };
    if (found.length >= MAX_MARKERS_PER_TEXT) throw new SealedError('resource-exhausted', `more than ${MAX_MARKERS_PER_TEXT} {{s5:…}} markers in one text`, position);
    found.push({ text: match[0], body: match[1] ?? '', ...position, index: at });
  }
  return found;
}

/** `--s5-aes-key` / `S5_AES_KEY`: hex of 16, 24 or 32 bytes. The message never repeats the key. */
export function parseS5AesKey(hex: string): Buffer {
  const trimmed = hex.trim();
  if (!/^[0-9a-fA-F]*$/.test(trimmed) || ![32, 48, 64].includes(trimmed.length)) {
    throw new SealedError('invalid-argument', `the s5 AES key must be hex of 16, 24 or 32 bytes (32, 48 or 64 hex digits); it has ${trimmed.length} characters`);
  }
  return Buffer.from(trimmed, 'hex');
}

/** The value of one s5 aes marker. Errors name the position, never the value or the key. */
export function openS5Marker(marker: S5Marker, key: Buffer): string {
  const at = { line: marker.line, column: marker.column };
  const bad = (why: string): SealedError => new SealedError('invalid-argument', `{{s5:…}} marker (aes engine): ${why}`, at);
  if (marker.body.length > MAX_S5_BODY) throw bad(`longer than ${MAX_S5_BODY} characters (values are at most ${MAX_VALUE_BYTES} bytes)`);
  const inner = Buffer.from(marker.body, 'base64').toString('latin1');
  const parts = inner.split(':');
  const [ctHex, nonceHex] = parts;
  if (parts.length !== 2 || ctHex === undefined || nonceHex === undefined || !/^(?:[0-9a-f]{2})+$/i.test(ctHex) || !/^[0-9a-f]{24}$/i.test(nonceHex)) {
    throw bad('the payload is not base64 of hex(ciphertext):hex(12-byte nonce)');
  }
  const sealed = Buffer.from(ctHex, 'hex');
  if (sealed.length < TAG_BYTES) throw bad('too short for its tag');
  let plain: Buffer;
  try {
    const decipher = createDecipheriv(`aes-${key.length * 8}-gcm` as 'aes-256-gcm', key, Buffer.from(nonceHex, 'hex'), { authTagLength: TAG_BYTES });
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
    plain = Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES)), decipher.final()]);
  } catch {
    throw bad('it does not authenticate under the given s5 AES key (another key, or an edited marker)');
  }
  const value = plain.toString('utf8');
  plain.fill(0);
  return value;
}
