import { resourceExhausted } from '../errors/podvault-error.js';

/**
 * The contents of all of the node's podvault volumes together, as tmpfs counts them. tmpfs pages
 * are charged to the memory cgroup of the process that writes them, the driver's: without a
 * node-wide bound, pods each filling their `--tmpfs-size` (64 volumes of 4 MiB) push the driver
 * past its DaemonSet memory limit, and the charge outlives the OOM-killed process, so it would
 * crash-loop. Each write reserves its volume's new size before it starts (synchronously: no two
 * publishes can both take the last bytes); an unpublish gives it back.
 */
export class NodeVolumeBudget {
  private readonly held = new Map<string, number>();
  private total = 0;

  constructor(private readonly limitBytes: number) {}

  get usedBytes(): number {
    return this.total;
  }

  /**
   * Reserve `bytes` for the volume at `target` in place of what it held, or refuse with
   * RESOURCE_EXHAUSTED (the kubelet retries: space frees as other pods go). Returns the undo.
   */
  reserve(target: string, bytes: number): () => void {
    const before = this.held.get(target);
    const after = this.total - (before ?? 0) + bytes;
    if (after > this.limitBytes) {
      throw resourceExhausted(
        `the node's podvault volumes hold ${this.total} bytes; this volume's ${bytes} would pass --max-node-volume-size (${this.limitBytes} bytes): retried as other volumes go, or the node's operator raises the limit`,
      );
    }
    this.set(target, bytes);
    return () => (before === undefined ? this.release(target) : this.set(target, before));
  }

  /** A volume found mounted at start (recovered): counted as it is, never refused. */
  adopt(target: string, bytes: number): void {
    this.set(target, bytes);
  }

  release(target: string): void {
    this.total -= this.held.get(target) ?? 0;
    this.held.delete(target);
  }

  private set(target: string, bytes: number): void {
    this.total += bytes - (this.held.get(target) ?? 0);
    this.held.set(target, bytes);
  }
}
