/**
 * Preloaded into the driver by `npm run bench` with BENCH_LIVE_HEAP=1 (`--expose-gc --import` this
 * file): on SIGUSR2 it runs two full garbage collections and writes `process.memoryUsage()` as JSON
 * with the used bytes of each V8 heap space, to BENCH_PROBE_FILE. RSS right after a full GC against RSS without one tells what the heap keeps
 * live (a leak, a cache) from what V8 merely has not collected yet (headroom). Bench tooling only:
 * the driver never loads it.
 */
import { writeFileSync } from 'node:fs';
import { getHeapSpaceStatistics } from 'node:v8';

const gc = (globalThis as { gc?: () => void }).gc;
const file = process.env.BENCH_PROBE_FILE;
if (gc && file) {
  process.on('SIGUSR2', () => {
    gc();
    gc();
    const spaces = Object.fromEntries(getHeapSpaceStatistics().map((s) => [s.space_name, s.space_used_size]));
    writeFileSync(file, JSON.stringify({ ...process.memoryUsage(), spaces }));
  });
}
