import type { z } from 'zod';

/** Zod issues as one line: `spec.provider: Required; metadata.name: ...`. */
export function describeZodError(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
}
