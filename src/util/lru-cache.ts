/**
 * A small least-recently-used map. Used for SDK credentials and clients, one per identity (and
 * vault): reusing them keeps their token caches and connection pools, and the bound keeps a node
 * that has seen many identities from growing without limit.
 */
export class LruCache<V> {
  private readonly entries = new Map<string, V>();

  constructor(private readonly capacity = 256) {}

  getOrCreate(key: string, create: () => V): V {
    const existing = this.entries.get(key);
    if (existing !== undefined) {
      this.entries.delete(key);
      this.entries.set(key, existing);
      return existing;
    }
    const created = create();
    this.entries.set(key, created);
    if (this.entries.size > this.capacity) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    return created;
  }

  delete(key: string): void {
    this.entries.delete(key);
  }
}
