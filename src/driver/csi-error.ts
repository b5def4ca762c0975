import { status } from '@grpc/grpc-js';

/**
 * The one error type handlers throw. Its message goes back to the kubelet as the gRPC status
 * message, and the kubelet shows it to the user in a `FailedMount` event, so it must be a
 * sentence a user can act on and must never contain a secret value or a token.
 * `cause` keeps the underlying error for the log (see `describeCause`).
 */
export class CsiError extends Error {
  readonly code: status;

  constructor(code: status, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CsiError';
    this.code = code;
  }
}

export const invalidArgument = (message: string, cause?: unknown): CsiError =>
  new CsiError(status.INVALID_ARGUMENT, message, { cause });
export const notFound = (message: string, cause?: unknown): CsiError =>
  new CsiError(status.NOT_FOUND, message, { cause });
export const permissionDenied = (message: string, cause?: unknown): CsiError =>
  new CsiError(status.PERMISSION_DENIED, message, { cause });
export const failedPrecondition = (message: string, cause?: unknown): CsiError =>
  new CsiError(status.FAILED_PRECONDITION, message, { cause });
export const unavailable = (message: string, cause?: unknown): CsiError =>
  new CsiError(status.UNAVAILABLE, message, { cause });
export const internal = (message: string, cause?: unknown): CsiError =>
  new CsiError(status.INTERNAL, message, { cause });

/** Safe fields of an arbitrary error for a log line: never request objects, headers or bodies. */
export interface CauseSummary {
  name: string;
  message: string;
  code?: string | number;
  statusCode?: number;
  cause?: CauseSummary;
}

const MAX_MESSAGE = 500;

/**
 * Reduce an error to fields that are safe to log. SDK errors (RestError, MSAL errors) carry the
 * request that failed, with its headers, as enumerable properties: a logger serialising the whole
 * object could print an Authorization header. We copy only name, message, code and status.
 */
export function describeCause(err: unknown, depth = 0): CauseSummary {
  if (!(err instanceof Error)) return { name: typeof err, message: 'non-error value thrown' };
  const summary: CauseSummary = { name: err.name, message: err.message.slice(0, MAX_MESSAGE) };
  const { code, statusCode } = err as { code?: unknown; statusCode?: unknown };
  if (typeof code === 'string' || typeof code === 'number') summary.code = code;
  if (typeof statusCode === 'number') summary.statusCode = statusCode;
  if (err.cause !== undefined && depth < 3) summary.cause = describeCause(err.cause, depth + 1);
  return summary;
}
