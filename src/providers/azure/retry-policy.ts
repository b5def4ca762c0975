import type { Logger } from '../../log.js';
import { sleep, ThrottledError } from './host-limiter.js';
import type { HostLimiter } from './host-limiter.js';
import { linkedSignal } from '../../util/linked-signal.js';

export interface RetryOptions {
  /** Attempts in all, the first included. */
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** Each attempt is aborted after this long and counts as a transient failure. */
  requestTimeoutMs: number;
  /** Epoch ms after which no new attempt or wait starts. */
  deadline: number;
  /** Ceiling of a Retry-After wait (and of the host pause it causes): Key Vault names seconds. */
  maxRetryAfterMs: number;
  /** Told the outcome of every attempt: an HTTP status, `ok`, or an error kind. */
  onAttempt?: (outcome: string) => void;
}

/** Thrown when the per-request timeout, not the caller, aborted an attempt. */
export class RequestTimeoutError extends Error {
  override readonly name = 'RequestTimeoutError';
  constructor(readonly timeoutMs: number) {
    super(`no answer within ${timeoutMs} ms`);
  }
}

const TRANSIENT_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'REQUEST_SEND_ERROR', 'ECONNABORTED', 'UND_ERR_SOCKET']);

/** 429, 5xx, resets and timeouts are worth another try; 4xx answers and auth refusals are not. */
export function isTransient(err: unknown): boolean {
  if (err instanceof RequestTimeoutError) return true;
  const e = err as { statusCode?: unknown; code?: unknown; name?: unknown };
  if (typeof e.statusCode === 'number') return e.statusCode === 429 || e.statusCode >= 500;
  if (e.name === 'AuthenticationError' || e.name === 'AuthenticationRequiredError' || e.name === 'CredentialUnavailableError' || e.name === 'AbortError') return false;
  return typeof e.code === 'string' && TRANSIENT_CODES.has(e.code);
}

/** Retry-After of a 429/503 answer, in ms (seconds or an HTTP date), if any. */
export function retryAfterMs(err: unknown): number | undefined {
  const headers = (err as { response?: { headers?: { get?: (name: string) => string | undefined } } }).response?.headers;
  const value = typeof headers?.get === 'function' ? headers.get('retry-after') : undefined;
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

/**
 * Run one vault request under the node's policy: through the host's limiter, with a timeout per
 * attempt, retried on transient failures with exponential backoff and full jitter, honouring
 * Retry-After (and pausing the whole host for it) up to `maxRetryAfterMs`, never past the publish
 * deadline: when Key Vault's (capped) wait outlasts the deadline, ThrottledError at once, so the
 * kubelet's own backoff takes over instead of a publish sleeping until it is killed. The SDK's own
 * retries are off for vault requests, so this is the only retry loop.
 */
export async function withRetries<T>(
  call: (signal: AbortSignal) => Promise<T>,
  limiter: HostLimiter,
  options: RetryOptions,
  signal: AbortSignal,
  log: Logger,
  what: string,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const release = await limiter.acquire(signal, options.deadline);
    const attemptSignal = linkedSignal([signal], options.requestTimeoutMs, () => new RequestTimeoutError(options.requestTimeoutMs));
    let failure: unknown;
    try {
      const result = await call(attemptSignal.signal);
      options.onAttempt?.('200');
      return result;
    } catch (err) {
      failure = attemptSignal.signal.aborted && !signal.aborted ? new RequestTimeoutError(options.requestTimeoutMs) : err;
      const code = (failure as { statusCode?: unknown }).statusCode;
      options.onAttempt?.(typeof code === 'number' ? String(code) : failure instanceof Error ? failure.name : 'error');
    } finally {
      attemptSignal.dispose();
      release();
    }
    if (signal.aborted || !isTransient(failure) || attempt >= options.maxAttempts) throw failure;
    const backoff = Math.random() * Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** (attempt - 1));
    const askedRaw = retryAfterMs(failure);
    const asked = askedRaw === undefined ? undefined : Math.min(askedRaw, options.maxRetryAfterMs);
    if (asked !== undefined) limiter.pause(asked);
    const delay = Math.max(backoff, asked ?? 0);
    if (Date.now() + delay >= options.deadline) throw asked !== undefined && asked >= backoff ? new ThrottledError(asked, { cause: failure }) : failure;
    const status = (failure as { statusCode?: unknown }).statusCode;
    log.warn({ what, attempt, status: typeof status === 'number' ? status : (failure as Error).name, retryInMs: Math.round(delay) }, 'vault request failed; retrying');
    await sleep(delay, signal);
  }
}
