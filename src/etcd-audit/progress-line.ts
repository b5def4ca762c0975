/** Where progress goes: stderr, so stdout stays the report (and `--json` stays parseable). */
export interface ProgressSink {
  write(text: string): unknown;
  isTTY?: boolean;
}

/**
 * "etcd-audit: secrets: 12000 objects read…" at most once a second. On a terminal one line is
 * rewritten in place and cleared at the end; elsewhere (`--progress` into a log) each update is a
 * line of its own. Counts only: never a key or a value.
 */
export class ProgressLine {
  private lastAt = 0;
  private shown = false;

  constructor(
    private readonly sink: ProgressSink | undefined,
    private readonly intervalMs = 1000,
  ) {}

  update(resource: string, read: number, total: number): void {
    if (!this.sink) return;
    const now = Date.now();
    if (now - this.lastAt < this.intervalMs) return;
    this.lastAt = now;
    const text = `etcd-audit: ${resource}: ${read} objects read (${total} in all)…`;
    if (this.sink.isTTY) this.sink.write(`\r\x1b[2K${text}`);
    else this.sink.write(`${text}\n`);
    this.shown = true;
  }

  finish(): void {
    if (this.sink?.isTTY && this.shown) this.sink.write('\r\x1b[2K');
  }
}
