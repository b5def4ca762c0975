/**
 * Identical calls are made once and their result shared with every caller whose own operation
 * began before that result arrived: a call still in flight is always joined, and a result is
 * handed on for at most `holdMs` after it settled, only to operations that started before it
 * settled — so no caller ever gets data older than its own request. Failures are never handed on.
 */
export class SingleFlight<T> {
  private readonly entries = new Map<string, { promise: Promise<T>; settledAt?: number }>();

  constructor(private readonly holdMs = 2000) {}

  run(key: string, startedAt: number, call: () => Promise<T>): Promise<T> {
    const existing = this.entries.get(key);
    if (existing && (existing.settledAt === undefined || existing.settledAt >= startedAt)) return existing.promise;
    const entry: { promise: Promise<T>; settledAt?: number } = { promise: call() };
    this.entries.set(key, entry);
    entry.promise.then(
      () => {
        entry.settledAt = Date.now();
        setTimeout(() => {
          if (this.entries.get(key) === entry) this.entries.delete(key);
        }, this.holdMs).unref();
      },
      () => {
        if (this.entries.get(key) === entry) this.entries.delete(key);
      },
    );
    return entry.promise;
  }
}
