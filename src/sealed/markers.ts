import { decodePayload, MARKER_PREFIX, MARKER_SUFFIX, MAX_MARKER_CHARS } from './format.js';
import type { SealedPayload } from './format.js';
import { SealedError } from './sealed-error.js';

/** Most markers one text may hold; a larger count is refused before any vault call. */
export const MAX_MARKERS_PER_TEXT = 10_000;

/** One `{{pv:…}}` marker found in a text, decoded and checked (not yet opened). */
export interface SealedMarker extends SealedPayload {
  /** The marker exactly as it appears, braces included. */
  text: string;
  /** 1-based line and column (UTF-16 units) of its first `{`. */
  line: number;
  column: number;
  /** Offset of its first character in the text. */
  index: number;
}

const BODY = /[A-Za-z0-9_-]*/y;

/**
 * Every `{{pv:…}}` marker of `text`, in order. A marker is `{{pv:` then base64url then `}}` on one
 * line; anything else after a `{{pv:` (another character, a line end, no closing braces, an
 * undecodable payload) throws a SealedError naming its line and column. Cost is linear in the text.
 */
export function findMarkers(text: string): SealedMarker[] {
  const markers: SealedMarker[] = [];
  let line = 1;
  let lineStart = 0;
  let scanned = 0;
  for (let at = text.indexOf(MARKER_PREFIX); at !== -1; at = text.indexOf(MARKER_PREFIX, at + 1)) {
    for (let nl = text.indexOf('\n', scanned); nl !== -1 && nl < at; nl = text.indexOf('\n', nl + 1)) {
      line += 1;
      lineStart = nl + 1;
    }
    scanned = at;
    const position = { line, column: at - lineStart + 1 };
    if (markers.length >= MAX_MARKERS_PER_TEXT) throw new SealedError('resource-exhausted', `more than ${MAX_MARKERS_PER_TEXT} {{pv:…}} markers in one text`, position);
    const bodyStart = at + MARKER_PREFIX.length;
    BODY.lastIndex = bodyStart;
    BODY.exec(text);
    const end = BODY.lastIndex;
    if (end + MARKER_SUFFIX.length - at > MAX_MARKER_CHARS || !text.startsWith(MARKER_SUFFIX, end)) {
      const next = text[end];
      const why =
        end + MARKER_SUFFIX.length - at > MAX_MARKER_CHARS ? `longer than ${MAX_MARKER_CHARS} characters`
        : next === undefined ? 'the text ends before its closing }}'
        : next === '\n' || next === '\r' ? 'the line ends before its closing }} (markers do not span lines)'
        : `character ${JSON.stringify(next)} at column ${position.column + end - at} is not base64url`;
      throw new SealedError('invalid-argument', `malformed {{pv:…}} marker: ${why}`, position);
    }
    const payload = decodePayload(text.slice(bodyStart, end), position);
    markers.push({ ...payload, text: text.slice(at, end + MARKER_SUFFIX.length), line: position.line, column: position.column, index: at });
    at = end + MARKER_SUFFIX.length - 1;
  }
  return markers;
}
