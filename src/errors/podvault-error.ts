/**
 * podvault's own error kinds. Every layer below the gRPC adapters (identity, providers, kube,
 * mount engine) raises these; only an adapter (`src/driver/grpc-status.ts` for CSI) turns a kind
 * into a wire status code. The message is what a user reads (the kubelet copies a CSI status
 * message into the pod's `FailedMount` event), so it must be a sentence a user can act on and must
 * never contain a secret value or a token. `cause` keeps the underlying error for the log only,
 * reduced to safe fields by `describeCause`.
 */
export type ErrorKind =
  | 'invalid-argument'
  | 'not-found'
  | 'permission-denied'
  | 'failed-precondition'
  | 'resource-exhausted'
  | 'unavailable'
  | 'deadline-exceeded'
  | 'cancelled'
  | 'aborted'
  | 'unimplemented'
  | 'internal';

export class PodvaultError extends Error {
  readonly kind: ErrorKind;

  constructor(kind: ErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PodvaultError';
    this.kind = kind;
  }

  /** The same error with a prefix naming where it happened (`vault …: secret "x": …`). */
  withContext(prefix: string): PodvaultError {
    return new PodvaultError(this.kind, `${prefix}: ${this.message}`, { cause: this.cause });
  }
}

const make =
  (kind: ErrorKind) =>
  (message: string, cause?: unknown): PodvaultError =>
    new PodvaultError(kind, message, { cause });

export const invalidArgument = make('invalid-argument');
export const notFound = make('not-found');
export const permissionDenied = make('permission-denied');
export const failedPrecondition = make('failed-precondition');
export const resourceExhausted = make('resource-exhausted');
export const unavailable = make('unavailable');
export const deadlineExceeded = make('deadline-exceeded');
export const cancelled = make('cancelled');
export const aborted = make('aborted');
export const unimplemented = make('unimplemented');
export const internal = make('internal');
