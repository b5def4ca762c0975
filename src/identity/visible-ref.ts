import { PodvaultError } from '../errors/podvault-error.js';

/**
 * How a refusal names an object. Its message lands in the requesting pod's events, so it names
 * only that pod and objects of its own namespace; an object of another namespace (reachable only
 * with --cluster-wide-bindings) is described, not named, and the full detail goes to the driver
 * log through `withLoggedDetail`.
 */
export function visibleRef(podNamespace: string, kind: string, namespace: string, name: string): string {
  return namespace === podNamespace ? `${kind} ${namespace}/${name}` : `${/^[AEIOU]/i.test(kind) ? 'an' : 'a'} ${kind} of another namespace`;
}

/**
 * `error` as the user reads it, carrying `detail` (which may name other namespaces' objects) as
 * its cause: the gRPC adapter and the rotation loop log causes (describeCause keeps podvault's own
 * messages), the kubelet and the pod's events see only the message.
 */
export function withLoggedDetail(error: PodvaultError, detail: string | undefined): PodvaultError {
  if (detail === undefined || detail === error.message) return error;
  return new PodvaultError(error.kind, error.message, { cause: new PodvaultError(error.kind, detail, error.cause === undefined ? undefined : { cause: error.cause }) });
}

/**
 * A read of an object that may belong to another namespace: a failure of the pod's own namespace
 * passes as it is; of another, the user reads `message` and the original goes to the log only.
 */
export async function readForeignSafe<T>(podNamespace: string, namespace: string, message: string, read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (err) {
    if (namespace === podNamespace || !(err instanceof PodvaultError)) throw err;
    throw withLoggedDetail(new PodvaultError(err.kind, message, { cause: err.cause }), err.message);
  }
}
