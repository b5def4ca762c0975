import { search } from '@jmespath-community/jmespath';
import type { JSONValue } from '@jmespath-community/jmespath';
import { parseDocument } from 'yaml';
import type { DocumentOptions, ParseOptions, SchemaOptions } from 'yaml';

/**
 * Fields of a JSON or YAML secret selected by JMESPath expressions (provider #885, the AWS
 * provider's `jmesPath`). Runs only inside the field-extraction worker (`field-extraction-worker.ts`):
 * the secret's bytes are the vault's, and a hostile 128 KiB YAML value held a thread for 2.6 s
 * (bench/secret-fields.ts). Answers never quote the value: parser and JMESPath messages may.
 */

/** What one expression gave: the field's bytes as text, or why there are none (podvault's words). */
export type FieldResult = { ok: true; text: string } | { ok: false; problem: string };

/** Aliases a YAML value may use: enough for hand-written anchors, far from a billion laughs. */
export const YAML_MAX_ALIASES = 100;

const YAML_OPTIONS: ParseOptions & DocumentOptions & SchemaOptions = {
  // Core schema only: no custom or language-specific tags (`!!binary`, `!!js/function`, timestamps).
  schema: 'core',
  customTags: [],
  resolveKnownTags: false,
  merge: false,
  // The duplicate-key check is quadratic in a mapping's size (20,000 keys: seconds); a duplicate
  // key keeps its last value, as JSON.parse does.
  uniqueKeys: false,
  prettyErrors: false,
};

/** The secret as data: JSON first, else one YAML document. Undefined when it is neither. */
export function parseSecretDocument(text: string): JSONValue | undefined {
  try {
    return JSON.parse(text) as JSONValue;
  } catch {
    /* not JSON: try YAML */
  }
  // parseDocument, not parse: parse prints warnings (an unresolved tag, quoting the value) to the
  // process's warning output, and with logLevel silent it drops the errors as well.
  try {
    const doc = parseDocument(text, YAML_OPTIONS);
    if (doc.errors.length > 0) return undefined;
    return doc.toJS({ maxAliasCount: YAML_MAX_ALIASES }) as JSONValue;
  } catch {
    return undefined;
  }
}

/**
 * A result as the file's text, at most `maxBytes` long: strings as they are; numbers and booleans as JSON writes them
 * (`5432`, `true`); objects and arrays as compact JSON, at most `maxBytes` long — counted while
 * it is written, so a result that repeats the document (`[@, @]` nested) is refused early.
 */
export function fieldText(value: JSONValue, maxBytes: number): FieldResult {
  if (value === null) return { ok: false, problem: 'selects nothing (null)' };
  // A string may be built by the expression (`join('', [a, a, …])`: 51 MB from a 100 KiB value),
  // so it is bounded too, here in the worker, before it is sent to the serving thread.
  if (typeof value === 'string') return value.length > maxBytes || Buffer.byteLength(value, 'utf8') > maxBytes ? { ok: false, problem: `selects more than ${maxBytes} bytes` } : { ok: true, text: value };
  if (typeof value === 'number' || typeof value === 'boolean') return { ok: true, text: String(value) };
  let budget = maxBytes;
  const tooBig = new Error('too big');
  const text = JSON.stringify(value, (key: string, v: unknown) => {
    budget -= key.length + (typeof v === 'string' ? v.length : 8);
    if (budget < 0) throw tooBig;
    return v;
  });
  return Buffer.byteLength(text, 'utf8') > maxBytes ? { ok: false, problem: `selects more than ${maxBytes} bytes` } : { ok: true, text };
}

/** Each expression's field of `text`; `undefined` when the text is neither JSON nor YAML. */
export function extractSecretFields(text: string, paths: readonly string[], maxBytes: number): FieldResult[] | undefined {
  const data = parseSecretDocument(text);
  if (data === undefined) return undefined;
  return paths.map((path) => {
    let value: JSONValue;
    try {
      value = search(data, path);
    } catch {
      return { ok: false, problem: 'could not be evaluated on this value' };
    }
    try {
      return fieldText(value, maxBytes);
    } catch {
      return { ok: false, problem: `selects more than ${maxBytes} bytes` };
    }
  });
}
