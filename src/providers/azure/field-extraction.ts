import { compile } from '@jmespath-community/jmespath';
import { PodvaultError, invalidArgument } from '../../errors/podvault-error.js';
import { payloadPathProblem } from '../../driver/paths.js';
import { fieldExtractor } from '../../untrusted/field-extractor.js';
import { parseEnvName } from './env-file.js';

/**
 * `jmesPath` of an object: one more file per field of a JSON or YAML secret (provider #885), in
 * the AWS provider's shape:
 *
 *     jmesPath:
 *       - path: db.password        # a JMESPath expression
 *         objectAlias: dbpw        # the field's file name, checked as objectAlias is
 *
 * The object's own file is written too, as the AWS provider does. The value is parsed as JSON,
 * else as one YAML document (core schema, at most 100 aliases), on a worker thread
 * (`src/untrusted/field-extractor.ts`). A field that selects nothing fails the publish naming the
 * object and path; a string is written as it is, a number or boolean as JSON writes it (`5432`),
 * an object or array as compact JSON (the AWS provider refuses all but strings).
 */
export interface JmesPathField {
  path: string;
  /** The field's file name. */
  fileName: string;
  /** Undefined: derived from the file name; null: not in the env file. */
  envName: string | null | undefined;
}

/** Longest expression: real ones are a few dozen characters. */
const MAX_PATH_LENGTH = 1024;

/** The `jmesPath` field of an object entry; `at` names the object. */
export function parseJmesPath(value: unknown, at: string, objectType: string, objectVersionHistory: number, maxFields: number): JmesPathField[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw invalidArgument(`${at}: field jmesPath must be a list of {path, objectAlias}`);
  if (value.length === 0) return [];
  if (objectType !== 'secret') throw invalidArgument(`${at}: field jmesPath is only supported for objectType secret`);
  if (objectVersionHistory > 1) throw invalidArgument(`${at}: field jmesPath cannot be combined with objectVersionHistory`);
  if (value.length > maxFields) throw invalidArgument(`${at}: field jmesPath lists ${value.length} fields, over the limit of ${maxFields} files per class (--max-class-objects)`);
  return value.map((entry: unknown, i) => {
    const where = `${at}: jmesPath[${i}]`;
    if (!entry || typeof entry !== 'object' || Array.isArray(entry)) throw invalidArgument(`${where} must be a mapping with path and objectAlias`);
    const { path: rawPath, objectAlias: rawAlias, envName } = entry as Record<string, unknown>;
    const path = typeof rawPath === 'string' ? rawPath.trim() : '';
    if (path === '') throw invalidArgument(`${where}: field path is required`);
    if (path.length > MAX_PATH_LENGTH) throw invalidArgument(`${where}: field path must be at most ${MAX_PATH_LENGTH} characters`);
    try {
      compile(path);
    } catch (err) {
      throw invalidArgument(`${where}: field path ${JSON.stringify(path)} is not a JMESPath expression: ${err instanceof Error ? err.message.split('\n')[0] : 'syntax error'}`);
    }
    const fileName = typeof rawAlias === 'string' ? rawAlias.trim() : '';
    if (fileName === '') throw invalidArgument(`${where}: field objectAlias is required (the field's file name)`);
    const problem = payloadPathProblem(fileName);
    if (problem) throw invalidArgument(`${where}: field objectAlias ${problem}`);
    return { path, fileName, envName: parseEnvName(envName, where) };
  });
}

/**
 * The bytes of each field of `contents` (the object's file, as UTF-8 text); `what` names the
 * object in the errors, which never quote the value; `signal` ends the wait (see FieldExtractor).
 */
export async function extractFields(contents: Buffer, fields: readonly JmesPathField[], what: string, maxBytes: number, signal?: AbortSignal): Promise<Buffer[]> {
  let results;
  try {
    results = await fieldExtractor.extract(contents.toString('utf8'), fields.map((f) => f.path), maxBytes, signal);
  } catch (err) {
    throw err instanceof PodvaultError ? new PodvaultError(err.kind, `${what}: the value ${err.message}`, { cause: err.cause }) : err;
  }
  return fields.map((field, i) => {
    const r = results[i];
    if (!r) throw invalidArgument(`${what}: jmesPath ${JSON.stringify(field.path)} (file ${JSON.stringify(field.fileName)}) was not evaluated`);
    if (!r.ok) throw invalidArgument(`${what}: jmesPath ${JSON.stringify(field.path)} (file ${JSON.stringify(field.fileName)}) ${r.problem}`);
    return Buffer.from(r.text, 'utf8');
  });
}
