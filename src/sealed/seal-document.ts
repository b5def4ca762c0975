import { isMap, isScalar, isSeq, parseDocument } from 'yaml';
import type { Node } from 'yaml';
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

type Plain = string | number | boolean;

function sealable(value: unknown, path: string): string {
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
    const text = String(value as Plain);
    if (text.startsWith(MARKER_PREFIX)) throw new SealedError('invalid-argument', `--path ${path}: the value is already sealed`);
    return text;
  }
  throw new SealedError('invalid-argument', `--path ${path}: ${value === null ? 'the value is null' : 'it names a mapping or a list, not a value'}`);
}

/**
 * Seal the values at `paths` of a YAML or JSON text in place, all under one data key, keeping the
 * rest of the file: YAML through the yaml library's Document API (comments, order and styles stay;
 * a sealed value becomes a double-quoted string on one line), JSON through JSON.parse with the
 * file's indentation. Errors name the path or the parse position, never a value.
 */
export async function sealDocument(text: string, format: DocumentFormat, paths: readonly string[], keyId: string, wrapper: DataKeyWrapper, signal?: AbortSignal): Promise<{ text: string; versionedKeyId: string }> {
  if (paths.length === 0) throw new SealedError('invalid-argument', '--file needs at least one --path');
  return format === 'json' ? sealJson(text, paths, keyId, wrapper, signal) : sealYaml(text, paths, keyId, wrapper, signal);
}

async function sealYaml(text: string, paths: readonly string[], keyId: string, wrapper: DataKeyWrapper, signal?: AbortSignal): Promise<{ text: string; versionedKeyId: string }> {
  const doc = parseDocument(text);
  const problem = doc.errors[0];
  if (problem) {
    // yaml's messages quote the source, which holds the values: only the position is repeated.
    const pos = problem.linePos?.[0];
    throw new SealedError('invalid-argument', `not valid YAML${pos ? ` at line ${pos.line} column ${pos.col}` : ''} (${problem.code})`);
  }
  const targets = paths.map((path) => {
    let node: unknown = doc.contents;
    for (const segment of parsePath(path)) {
      if (isMap(node)) node = node.get(segment, true);
      else if (isSeq(node) && /^\d+$/.test(segment)) node = node.get(Number(segment), true);
      else node = undefined;
      if (node === undefined) throw new SealedError('not-found', `--path ${path}: no such key in the file (at ${JSON.stringify(segment)})`);
    }
    if (!isScalar(node)) throw new SealedError('invalid-argument', `--path ${path}: it names a mapping or a list, not a value`);
    return { node, value: sealable(node.value, path) };
  });
  const sealed = await sealValues(targets.map((t) => t.value), keyId, wrapper, signal);
  targets.forEach(({ node }, i) => {
    node.value = sealed.markers[i];
    node.type = node.type === 'QUOTE_SINGLE' ? 'QUOTE_SINGLE' : 'QUOTE_DOUBLE';
    (node as Node).tag = undefined;
  });
  // lineWidth 0: never fold a marker over two lines.
  return { text: doc.toString({ lineWidth: 0 }), versionedKeyId: sealed.versionedKeyId };
}

async function sealJson(text: string, paths: readonly string[], keyId: string, wrapper: DataKeyWrapper, signal?: AbortSignal): Promise<{ text: string; versionedKeyId: string }> {
  let root: unknown;
  try {
    root = JSON.parse(text);
  } catch {
    // JSON.parse quotes the text it choked on: not repeated.
    throw new SealedError('invalid-argument', 'not valid JSON');
  }
  const targets = paths.map((path) => {
    const segments = parsePath(path);
    let parent: unknown = undefined;
    let node: unknown = root;
    for (const segment of segments) {
      parent = node;
      if (Array.isArray(node) && /^\d+$/.test(segment)) node = node[Number(segment)];
      else if (typeof node === 'object' && node !== null && !Array.isArray(node) && Object.hasOwn(node, segment)) node = (node as Record<string, unknown>)[segment];
      else node = undefined;
      if (node === undefined) throw new SealedError('not-found', `--path ${path}: no such key in the file (at ${JSON.stringify(segment)})`);
    }
    return { parent: parent as Record<string, unknown>, key: segments[segments.length - 1] as string, value: sealable(node, path) };
  });
  const sealed = await sealValues(targets.map((t) => t.value), keyId, wrapper, signal);
  targets.forEach(({ parent, key }, i) => {
    if (Array.isArray(parent)) parent[Number(key)] = sealed.markers[i];
    else parent[key] = sealed.markers[i];
  });
  const indent = /^\{?\s*\n([ \t]+)\S/.exec(text)?.[1] ?? /\n([ \t]+)\S/.exec(text)?.[1] ?? '  ';
  return { text: `${JSON.stringify(root, null, indent)}${text.endsWith('\n') ? '\n' : ''}`, versionedKeyId: sealed.versionedKeyId };
}
