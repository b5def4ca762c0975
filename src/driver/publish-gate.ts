import { cancelled, PodvaultError, resourceExhausted } from '../errors/podvault-error.js';

export interface PublishGateOptions {
  /** Publishes (and rotations) holding fetched data at once: --max-concurrent-publishes. */
  slots: number;
  /** Callers allowed to wait for a slot: --max-queued-publishes. */
  queue: number;
  /** A caller waits at most this long (the publish deadline), then gets RESOURCE_EXHAUSTED. */
  maxWaitMs: number;
}

interface Waiter {
  grant: () => void;
  fail: (err: unknown) => void;
}

/**
 * Bounds the publishes holding fetched data in memory at once. Each holds at most --tmpfs-size of
 * files (fetch-limits.ts), so memory is bounded by slots × that, whatever the kubelet (or another
 * caller of the socket) sends at once.
 *
 * Beyond the slots, callers wait in a bounded FIFO queue; beyond the queue they are answered
 * RESOURCE_EXHAUSTED at once. Why both: a waiting publish holds only its request (no vault data),
 * so a node starting all its pods at once (110 by default) still publishes them in the kubelet's
 * first attempt instead of a burst of failures and backoffs; the queue bound caps even that cost,
 * and RESOURCE_EXHAUSTED is a code the kubelet retries with backoff. A waiter gives up when its
 * caller cancels (the kubelet's 2-minute deadline) or after `maxWaitMs`, whichever comes first.
 */
export class PublishGate {
  private running = 0;
  private readonly waiting: Waiter[] = [];

  constructor(private readonly options: PublishGateOptions) {}

  /** Publishes holding a slot now. */
  get active(): number {
    return this.running;
  }

  /** Publishes waiting for a slot now. */
  get queued(): number {
    return this.waiting.length;
  }

  /**
   * Wait for a slot; returns its release function (idempotent), to call in a `finally` once the
   * fetched data is written or dropped.
   */
  async enter(signal: AbortSignal): Promise<() => void> {
    await this.acquire(signal);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.release();
    };
  }

  private acquire(signal: AbortSignal): Promise<void> {
    const { slots, queue, maxWaitMs } = this.options;
    if (signal.aborted) return Promise.reject(abortError(signal));
    if (this.running < slots) {
      this.running += 1;
      return Promise.resolve();
    }
    if (this.waiting.length >= queue) {
      return Promise.reject(
        resourceExhausted(`the driver is busy: ${slots} publishes are fetching and ${queue} are waiting (--max-concurrent-publishes, --max-queued-publishes); will retry`),
      );
    }
    return new Promise<void>((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        const index = this.waiting.indexOf(waiter);
        if (index >= 0) this.waiting.splice(index, 1);
      };
      const waiter: Waiter = {
        grant: () => {
          done();
          resolve();
        },
        fail: (err) => {
          done();
          reject(err);
        },
      };
      const onAbort = (): void => waiter.fail(abortError(signal));
      const timer = setTimeout(
        () => waiter.fail(resourceExhausted(`the driver is busy: waited ${Math.round(maxWaitMs / 1000)} s for one of ${slots} publish slots (--max-concurrent-publishes); will retry`)),
        maxWaitMs,
      );
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(waiter);
    });
  }

  /** Hand the slot to the first waiter, else free it. */
  private release(): void {
    const next = this.waiting[0];
    if (next) next.grant();
    else this.running -= 1;
  }
}

function abortError(signal: AbortSignal): PodvaultError {
  return signal.reason instanceof PodvaultError ? signal.reason : cancelled('publish cancelled by the caller while waiting for a publish slot');
}
