import { status } from '@grpc/grpc-js';
import type { ErrorKind } from '../errors/podvault-error.js';

/**
 * The CSI adapter's mapping of podvault's error kinds to gRPC status codes. The kubelet treats
 * CANCELLED, DEADLINE_EXCEEDED, UNAVAILABLE, RESOURCE_EXHAUSTED and ABORTED as "try again" and
 * every other code as final (shared/notes/kubelet-contract.md).
 */
const STATUS_OF: Record<ErrorKind, status> = {
  'invalid-argument': status.INVALID_ARGUMENT,
  'not-found': status.NOT_FOUND,
  'permission-denied': status.PERMISSION_DENIED,
  'failed-precondition': status.FAILED_PRECONDITION,
  'resource-exhausted': status.RESOURCE_EXHAUSTED,
  unavailable: status.UNAVAILABLE,
  'deadline-exceeded': status.DEADLINE_EXCEEDED,
  cancelled: status.CANCELLED,
  aborted: status.ABORTED,
  unimplemented: status.UNIMPLEMENTED,
  internal: status.INTERNAL,
};

export function grpcStatusOf(kind: ErrorKind): status {
  return STATUS_OF[kind];
}

/** `INVALID_ARGUMENT` etc., the label metrics and logs use for an outcome. */
export function grpcStatusName(kind: ErrorKind): string {
  return status[STATUS_OF[kind]];
}
