import { sleep } from '../providers/azure/host-limiter.js';

/**
 * `--max-requests-per-second`: a token bucket of `ratePerSecond` tokens a second holding at most
 * `burst`, one token per vault request (retries included). Waiters are served in arrival order.
 */
export class TokenBucket {
  private tokens: number;
  private last = Date.now();
  private queue: Promise<void> = Promise.resolve();

  constructor(
    private readonly ratePerSecond: number,
    private readonly burst = Math.max(1, Math.ceil(ratePerSecond)),
  ) {
    if (!(ratePerSecond > 0)) throw new Error('the request rate must be positive');
    this.tokens = this.burst;
  }

  /** Wait for one token; rejects when `signal` aborts. */
  take(signal?: AbortSignal): Promise<void> {
    const turn = this.queue.then(() => this.wait(signal));
    // The next waiter waits for this one, failed or not.
    this.queue = turn.catch(() => undefined);
    return turn;
  }

  private async wait(signal?: AbortSignal): Promise<void> {
    for (;;) {
      signal?.throwIfAborted();
      const now = Date.now();
      this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.ratePerSecond);
      this.last = now;
      if (this.tokens >= 1) {
        this.tokens -= 1;
        return;
      }
      await sleep(Math.ceil(((1 - this.tokens) / this.ratePerSecond) * 1000), signal);
    }
  }
}
