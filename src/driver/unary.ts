import { randomUUID } from 'node:crypto';
import type { ServerUnaryCall, sendUnaryData, handleUnaryCall } from '@grpc/grpc-js';
import type { Logger } from '../log.js';
import { describeCause } from '../errors/describe-cause.js';
import { cancelled, PodvaultError } from '../errors/podvault-error.js';
import { grpcStatusName, grpcStatusOf } from './grpc-status.js';
import { status } from '@grpc/grpc-js';
import { loggableRequest } from './redact.js';

export interface CallContext {
  requestId: string;
  log: Logger;
  /** Aborted when the caller cancels or its deadline passes. */
  signal: AbortSignal;
}

export type Handler<Req, Res> = (request: Req, ctx: CallContext) => Promise<Res>;

/**
 * Adapt a plain `async (request) => response` handler to grpc-js.
 *
 * grpc-js ignores the promise a handler returns: a rejected async handler would never answer and
 * the kubelet would wait for its 2-minute deadline, and a thrown error without a numeric `code`
 * would reach the caller as UNKNOWN with its raw message. Here every call is answered: a
 * `PodvaultError` with the code of its kind and message, anything else as INTERNAL with a generic message
 * (the detail goes to the log, through `describeCause`, never to the caller).
 */
export function unary<Req, Res>(method: string, handler: Handler<Req, Res>, log: Logger): handleUnaryCall<Req, Res> {
  return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>): void => {
    const requestId = randomUUID();
    const callLog = log.child({ method, requestId });
    const controller = new AbortController();
    call.on('cancelled', () => controller.abort(cancelled(`${method} cancelled by the caller`)));
    const started = process.hrtime.bigint();
    callLog.debug({ request: loggableRequest(call.request) }, 'request');

    handler(call.request, { requestId, log: callLog, signal: controller.signal }).then(
      (response) => {
        callLog.info({ code: 'OK', ms: elapsedMs(started) }, 'done');
        callback(null, response);
      },
      (err: unknown) => {
        if (err instanceof PodvaultError) {
          callLog.warn(
            { code: grpcStatusName(err.kind), ms: elapsedMs(started), cause: err.cause === undefined ? undefined : describeCause(err.cause) },
            err.message,
          );
          callback({ code: grpcStatusOf(err.kind), details: err.message });
        } else {
          callLog.error({ code: 'INTERNAL', ms: elapsedMs(started), cause: describeCause(err) }, 'unexpected error');
          callback({ code: status.INTERNAL, details: `${method} failed with an internal error (request ${requestId}); see the driver log` });
        }
      },
    );
  };
}

function elapsedMs(started: bigint): number {
  return Number((process.hrtime.bigint() - started) / 1000n) / 1000;
}
