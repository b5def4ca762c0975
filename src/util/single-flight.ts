/**
 * Identical calls in flight at the same moment are made once and their result shared. Nothing is
 * kept after the call settles: a result lives only as long as the callers waiting for it.
 */
export class SingleFlight<T> {
  private readonly inFlight = new Map<string, Promise<T>>();
  /** Calls answered from another caller's request (for tests and metrics). */
  shared = 0;

  run(key: string, call: () => Promise<T>): Promise<T> {
    const existing = this.inFlight.get(key);
    if (existing) {
      this.shared += 1;
      return existing;
    }
    const promise = call().finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, promise);
    return promise;
  }
}
