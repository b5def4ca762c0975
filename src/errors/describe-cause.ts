import { PodvaultError } from './podvault-error.js';

/** Safe fields of an arbitrary error for a log line: never request objects, headers or bodies. */
export interface CauseSummary {
  name: string;
  /** Present only for messages podvault or the OS wrote; SDK and parser messages are dropped. */
  message?: string;
  code?: string | number;
  statusCode?: number;
  /** OAuth2 error and AADSTS code of an Entra refusal, when the error carries them. */
  entra?: string;
  cause?: CauseSummary;
}

const MAX_MESSAGE = 500;

/**
 * The one place errors are reduced before they are logged. SDK errors carry the request that
 * failed (headers included) as properties, and their messages may quote the response body: a
 * malformed 200 answer puts the whole body, secret value included, into the RestError's message,
 * and JSON.parse quotes the text it choked on. So only podvault's own messages (written to be
 * safe) and the OS's (`ENOENT: no such file …`, paths only) are kept; of every other error only
 * its name, code, HTTP status and Entra error codes.
 */
export function describeCause(err: unknown, depth = 0): CauseSummary {
  if (!(err instanceof Error)) return { name: typeof err, message: 'non-error value thrown' };
  const summary: CauseSummary = { name: err.name };
  const { code, statusCode, syscall } = err as { code?: unknown; statusCode?: unknown; syscall?: unknown };
  if (err instanceof PodvaultError || typeof syscall === 'string') summary.message = err.message.slice(0, MAX_MESSAGE);
  if (typeof code === 'string' || typeof code === 'number') summary.code = typeof code === 'string' ? code.slice(0, 100) : code;
  if (typeof statusCode === 'number') summary.statusCode = statusCode;
  const entra = entraErrorCodes(err);
  if (entra.error || entra.aadsts) summary.entra = [entra.error, entra.aadsts].filter(Boolean).join(' ');
  if (err.cause !== undefined && depth < 3) summary.cause = describeCause(err.cause, depth + 1);
  return summary;
}

/**
 * The OAuth2 error and AADSTS code of an Entra failure. @azure/identity reports them in
 * `errorResponse`, or (through MSAL) only in the message, as `invalid_client: ... AADSTS7000215: ...`.
 * Only the codes are kept: they name the problem without quoting the request.
 */
export function entraErrorCodes(err: unknown): { error?: string; aadsts?: string } {
  const response = (err as { errorResponse?: { error?: unknown; errorDescription?: unknown } }).errorResponse;
  const message = err instanceof Error ? err.message : '';
  const text = `${typeof response?.errorDescription === 'string' ? response.errorDescription : ''} ${message}`;
  const error = typeof response?.error === 'string' ? response.error : /^([a-z_]{3,40}):/.exec(message)?.[1];
  return { error: error && /^[a-z_]{3,40}$/.test(error) ? error : undefined, aadsts: /AADSTS\d{1,10}/.exec(text)?.[0] };
}
