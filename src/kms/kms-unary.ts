import type { handleUnaryCall, sendUnaryData, ServerUnaryCall } from '@grpc/grpc-js';
import { status } from '@grpc/grpc-js';
import { describeCause } from '../errors/describe-cause.js';
import { PodvaultError } from '../errors/podvault-error.js';
import { grpcStatusName, grpcStatusOf } from '../driver/grpc-status.js';
import type { Logger } from '../log.js';
import type { VaultCallOptions } from './key-vault-wrapper.js';
import type { KmsMetrics } from './kms-metrics.js';

/** Answers leave this much before the caller's deadline, so a late answer is still an answer. */
const DEADLINE_MARGIN_MS = 150;

export type KmsHandler<Req, Res> = (request: Req, call: VaultCallOptions) => Promise<Res>;

/**
 * The KMS gRPC adapter: every call is answered (grpc-js ignores a handler's promise), a
 * PodvaultError with its kind's status code and message, anything else INTERNAL with a generic
 * message. The deadline is the earlier of the caller's and `timeoutMs` (kube-apiserver's 3 s), so
 * vault retries stop in time. Requests are never logged: they carry the plaintext seed (Encrypt)
 * and the wrapped one (Decrypt); only the method, kube-apiserver's uid, the code and the time are.
 */
export function kmsUnary<Req extends { uid?: string }, Res>(method: string, handler: KmsHandler<Req, Res>, timeoutMs: number, log: Logger, metrics: KmsMetrics): handleUnaryCall<Req, Res> {
  return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>): void => {
    const uid = typeof call.request.uid === 'string' ? call.request.uid.slice(0, 64) : '';
    const callLog = log.child({ method, uid });
    const controller = new AbortController();
    call.on('cancelled', () => controller.abort(new PodvaultError('cancelled', `${method} cancelled by the caller`)));
    const callerDeadline = deadlineMs(call.getDeadline());
    const deadline = Math.min(Date.now() + timeoutMs, callerDeadline) - DEADLINE_MARGIN_MS;
    const started = process.hrtime.bigint();
    // The deadline aborts the call wherever it waits (the limiter's queue included): a flood of
    // calls behind a slow vault fails fast instead of answering after kube-apiserver gave up.
    const timer = setTimeout(() => controller.abort(new PodvaultError('deadline-exceeded', `${method}: no answer from Key Vault within ${timeoutMs} ms (requests queued behind a slow or busy vault)`)), Math.max(0, deadline - Date.now()));
    const finish = (code: string): void => {
      clearTimeout(timer);
      metrics.operations.inc({ operation: method.toLowerCase(), result: code });
    };
    handler(call.request, { signal: controller.signal, deadline }).then(
      (response) => {
        callLog.debug({ code: 'OK', ms: elapsedMs(started) }, 'done');
        finish('OK');
        callback(null, response);
      },
      (err: unknown) => {
        if (err instanceof PodvaultError) {
          const code = grpcStatusName(err.kind);
          callLog.warn({ code, ms: elapsedMs(started), cause: err.cause === undefined ? undefined : describeCause(err.cause) }, err.message);
          finish(code);
          callback({ code: grpcStatusOf(err.kind), details: err.message });
        } else {
          callLog.error({ code: 'INTERNAL', ms: elapsedMs(started), cause: describeCause(err) }, 'unexpected error');
          finish('INTERNAL');
          callback({ code: status.INTERNAL, details: `${method} failed with an internal error; see the plugin log` });
        }
      },
    );
  };
}

function deadlineMs(deadline: Date | number): number {
  const ms = deadline instanceof Date ? deadline.getTime() : deadline;
  return Number.isFinite(ms) ? ms : Infinity;
}

function elapsedMs(started: bigint): number {
  return Number((process.hrtime.bigint() - started) / 1000n) / 1000;
}
