/**
 * Thrown instead of waiting when Key Vault's requested pause outlasts the caller's deadline: the
 * caller fails at once (UNAVAILABLE, the kubelet retries) rather than sleeping until it is aborted.
 */
export class ThrottledError extends Error {
  override readonly name = 'ThrottledError';
  /** How long Key Vault asked to wait (after the ceiling), from when this was thrown. */
  constructor(
    readonly waitMs: number,
    options?: { cause?: unknown },
  ) {
    super(`Key Vault asked to wait ${Math.ceil(waitMs / 1000)} s (Retry-After)`, options);
  }
}

/**
 * One limiter per vault host, node-wide: every publish (and, later, every rotation) to a host
 * goes through it. It bounds the requests in flight to the host, and when Key Vault throttles
 * (429 with Retry-After) it holds back every request to that host until the time Key Vault named,
 * so the whole node slows down together instead of each pod retrying on its own. The pause is
 * capped by `maxPauseMs`: a vault origin (hostile, or just wrong) answering `Retry-After: 86400`
 * must not freeze every pod of the node that reads from that host for a day.
 */
export class HostLimiter {
  private active = 0;
  private readonly waiting: Array<() => void> = [];
  private pausedUntil = 0;

  constructor(
    private readonly maxInFlight: number,
    private readonly maxPauseMs: number,
  ) {}

  /**
   * Wait for a slot (and for any throttling pause to end); returns the release function. A pause
   * that ends after `deadline` (epoch ms) is not waited for: ThrottledError at once.
   */
  async acquire(signal: AbortSignal, deadline = Infinity): Promise<() => void> {
    for (;;) {
      const pause = this.pausedUntil - Date.now();
      if (pause > 0 && this.pausedUntil >= deadline) throw new ThrottledError(pause);
      if (pause > 0) await sleep(pause, signal);
      else if (this.active < this.maxInFlight) break;
      else await this.slot(signal);
      signal.throwIfAborted();
    }
    this.active += 1;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.active -= 1;
      this.waiting.shift()?.();
    };
  }

  /** Wait to be woken by a release; an aborted waiter leaves the queue (so no wake-up is lost on it). */
  private slot(signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal.aborted) return reject(signal.reason);
      const wake = (): void => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = (): void => {
        const i = this.waiting.indexOf(wake);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(signal.reason);
      };
      this.waiting.push(wake);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Key Vault asked us to wait: hold every request to this host for `ms`, at most `maxPauseMs`. */
  pause(ms: number): void {
    this.pausedUntil = Math.max(this.pausedUntil, Date.now() + Math.min(ms, this.maxPauseMs));
  }
}

export class HostLimiters {
  private readonly limiters = new Map<string, HostLimiter>();

  constructor(
    private readonly maxInFlightPerHost: number,
    private readonly maxPauseMs: number,
  ) {}

  get(host: string): HostLimiter {
    let limiter = this.limiters.get(host);
    if (!limiter) {
      limiter = new HostLimiter(this.maxInFlightPerHost, this.maxPauseMs);
      this.limiters.set(host, limiter);
    }
    return limiter;
  }
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
