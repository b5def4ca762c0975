import type { z } from 'zod';
import { invalidArgument } from '../errors/podvault-error.js';
import { describeZodError } from '../util/zod-error.js';

/** Validate an object read from the API or a YAML file; a malformed one is named in the error. */
export function parseKubeObject<S extends z.ZodType>(schema: S, value: unknown, kind: string, where?: string): z.infer<S> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const meta = (value as { metadata?: { namespace?: unknown; name?: unknown } } | null)?.metadata;
  const ref = [meta?.namespace, meta?.name].filter((p): p is string => typeof p === 'string').join('/') || '(unnamed)';
  throw invalidArgument(`${kind} ${ref}${where ? ` (${where})` : ''} is malformed: ${describeZodError(parsed.error)}`);
}
