import { isMap, isScalar, isSeq, parseDocument } from 'yaml';
import type { DataKeyWrapper } from './data-keys.js';
import { MARKER_PREFIX } from './format.js';
import { sealValues } from './seal-values.js';
import { SealedError } from './sealed-error.js';

export type DocumentFormat = 'yaml' | 'json';

/** `a.b.0.c`: map keys and sequence indexes; a segment is never empty. */
export function parsePath(path: string): string[] {
  const segments = path.split('.');
  if (path === '' || segments.some((s) => s === '')) throw new SealedError('invalid-argument', `--path ${JSON.stringify(path)}: give keys separated by dots, e.g. db.password or servers.0.token`);
  return segments;
}

/** One value to seal: its node's source span, and the text that will be sealed. */
interface Target {
  path: string;
  start: number;
  end: number;
  value: string;
  /** The quotes the marker gets (a single-quoted value stays single-quoted). */
  quote: 'QUOTE_SINGLE' | 'QUOTE_DOUBLE';
  /** A block scalar's span ends with its line break: put back after the marker. */
  lineEnd: string;
}

/**
 * Seal the values at `paths` of a YAML or JSON text in place, all under one data key, changing
 * nothing else: each value's source span (as the yaml library reads it; JSON is read both by
 * JSON.parse, which must accept it, and by yaml for positions, and the two must agree) is replaced
 * by the quoted marker, and every other byte stays (comments, spacing, line ends, number spellings).
 * Errors name the path or the parse position, never a value.
 */
export async function sealDocument(text: string, format: DocumentFormat, paths: readonly string[], keyId: string, wrapper: DataKeyWrapper, signal?: AbortSignal): Promise<{ text: string; versionedKeyId: string }> {
  if (paths.length === 0) throw new SealedError('invalid-argument', '--file needs at least one --path');
  let json: unknown;
  if (format === 'json') {
    try {
      json = JSON.parse(text);
    } catch {
      // JSON.parse quotes the text it choked on: not repeated.
      throw new SealedError('invalid-argument', 'not valid JSON');
    }
  }
  const doc = parseDocument(text);
  const problem = doc.errors[0];
  if (problem) {
    // yaml's messages quote the source, which holds the values: only the position is repeated.
    const pos = problem.linePos?.[0];
    const what = format === 'json' ? "cannot read the JSON's structure" : 'not valid YAML';
    throw new SealedError('invalid-argument', `${what}${pos ? ` at line ${pos.line} column ${pos.col}` : ''} (${problem.code})`);
  }
  const targets = paths.map((path) => target(text, doc.contents, path, format === 'json' ? { root: json } : undefined));
  const spans = new Set<number>();
  for (const t of targets) {
    if (spans.has(t.start)) throw new SealedError('invalid-argument', `--path ${t.path}: the value is named twice`);
    spans.add(t.start);
  }
  const sealed = await sealValues(targets.map((t) => t.value), keyId, wrapper, signal);
  const order = targets.map((t, i) => ({ ...t, marker: sealed.markers[i] as string })).sort((a, b) => a.start - b.start);
  const parts: string[] = [];
  let from = 0;
  for (const t of order) {
    // A marker is base64url between braces: it needs no escaping in either quote style.
    const quoted = t.quote === 'QUOTE_SINGLE' ? `'${t.marker}'` : `"${t.marker}"`;
    parts.push(text.slice(from, t.start), quoted, t.lineEnd);
    from = t.end;
  }
  parts.push(text.slice(from));
  return { text: parts.join(''), versionedKeyId: sealed.versionedKeyId };
}

function valueAt(root: unknown, segments: readonly string[]): unknown {
  let node = root;
  for (const segment of segments) {
    if (Array.isArray(node) && /^\d+$/.test(segment)) node = node[Number(segment)];
    else if (typeof node === 'object' && node !== null && !Array.isArray(node) && Object.hasOwn(node, segment)) node = (node as Record<string, unknown>)[segment];
    else return undefined;
  }
  return node;
}

function target(text: string, contents: unknown, path: string, json: { root: unknown } | undefined): Target {
  const segments = parsePath(path);
  let node: unknown = contents;
  for (const segment of segments) {
    if (isMap(node)) node = node.get(segment, true);
    else if (isSeq(node) && /^\d+$/.test(segment)) node = node.get(Number(segment), true);
    else node = undefined;
    if (node === undefined) throw new SealedError('not-found', `--path ${path}: no such key in the file (at ${JSON.stringify(segment)})`);
  }
  if (!isScalar(node)) throw new SealedError('invalid-argument', `--path ${path}: it names a mapping or a list, not a value`);
  if (node.tag !== undefined && node.tag !== 'tag:yaml.org,2002:str') throw new SealedError('invalid-argument', `--path ${path}: the value has the explicit tag ${JSON.stringify(node.tag.slice(0, 100))}; remove it to seal the value`);
  const range = node.range;
  if (!range) throw new SealedError('internal', `--path ${path}: the value has no position in the file`);
  const [start, end] = range;
  const source = text.slice(start, end);
  const raw: unknown = node.value;
  if (raw === null) throw new SealedError('invalid-argument', `--path ${path}: the value is null`);
  // A number or boolean is sealed as it is written (12345678901234567890, 0x1F), not as JavaScript reads it.
  const value = typeof raw === 'string' ? raw : node.type === 'PLAIN' && (typeof raw === 'number' || typeof raw === 'bigint' || typeof raw === 'boolean') ? source : undefined;
  if (value === undefined) throw new SealedError('invalid-argument', `--path ${path}: not a plain value`);
  if (value.startsWith(MARKER_PREFIX)) throw new SealedError('invalid-argument', `--path ${path}: the value is already sealed`);
  if (json) {
    const expected = valueAt(json.root, segments);
    const agrees = typeof expected === 'string' ? expected === raw : typeof expected === 'number' ? Number(source) === expected : typeof expected === 'boolean' ? expected === raw : false;
    if (!agrees) throw new SealedError('internal', `--path ${path}: the JSON reads differently as JSON and as YAML; refused`);
  }
  const block = node.type === 'BLOCK_LITERAL' || node.type === 'BLOCK_FOLDED';
  return { path, start, end, value, quote: node.type === 'QUOTE_SINGLE' ? 'QUOTE_SINGLE' : 'QUOTE_DOUBLE', lineEnd: block ? (/\r?\n$/.exec(source)?.[0] ?? '') : '' };
}
