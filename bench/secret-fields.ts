/**
 * Why jmesPath runs on a worker thread, and what the serving thread pays now: for hostile values at
 * the --max-object-size limit (128 KiB), the time parsing and searching them takes on the calling
 * thread (`extractSecretFields` directly), then the serving thread's longest stall (event-loop
 * delay) while the field extractor's worker handles the same values.
 * Run after `npm run build`: `node dist/bench/secret-fields.js`. Prints one line per case.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { FieldExtractor } from '../src/untrusted/field-extractor.js';
import { extractSecretFields } from '../src/untrusted/secret-fields.js';

const SIZE = 128 * 1024;
const fill = (unit: (i: number) => string, sep: string, wrap = (s: string) => s): string => {
  let s = '';
  for (let i = 0; s.length < SIZE - 2; i++) s += (i ? sep : '') + unit(i);
  return wrap(s.slice(0, SIZE - 2));
};

const CASES: Record<string, string> = {
  'JSON, 128 KiB of nesting': '['.repeat(SIZE / 2) + ']'.repeat(SIZE / 2),
  'JSON, 10,000 keys': fill((i) => `"k${i}":"v"`, ',', (s) => `{${s.replace(/,[^,]*$/, '')}}`),
  'YAML, 128 KiB of flow nesting': '['.repeat(SIZE),
  'YAML, 15,000 block keys': fill((i) => `k${i}: 1`, '\n'),
  'YAML, 15,000 flow keys': fill((i) => `k${i}: 1`, ', ', (s) => `{${s}`),
  'YAML, 32,000 sequence items': fill(() => '- a', '\n'),
  'YAML, 10,000 tags': fill((i) => `k${i}: !t${i} x`, '\n'),
  'YAML, alias bomb': `a: &a [${'x, '.repeat(1000)}x]\nb: [${fill(() => '*a', ', ').slice(0, SIZE - 3100)}]`,
};
const PATHS = ['db.password', 'k1', '[0]'];

function onThread(): void {
  for (const [name, text] of Object.entries(CASES)) {
    extractSecretFields(text.slice(0, 64), PATHS, SIZE); // warm
    const t0 = process.hrtime.bigint();
    const r = extractSecretFields(text, PATHS, SIZE);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    console.log(`on the calling thread  ${name.padEnd(32)} ${String(text.length).padStart(7)} B  ${ms.toFixed(1).padStart(7)} ms  ${r ? 'parsed' : 'refused'}`);
  }
}

async function inWorker(): Promise<void> {
  const extractor = new FieldExtractor();
  await extractor.extract('{}', PATHS, SIZE); // the worker starts
  for (const [name, text] of Object.entries(CASES)) {
    const delay = monitorEventLoopDelay({ resolution: 1 });
    delay.enable();
    const t0 = process.hrtime.bigint();
    const outcome = await extractor.extract(text, PATHS, SIZE).then(
      () => 'parsed',
      (err: Error) => `refused (${err.message.slice(0, 40)})`,
    );
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    delay.disable();
    console.log(`via the worker         ${name.padEnd(32)} total ${ms.toFixed(1).padStart(7)} ms, serving thread's longest stall ${(delay.max / 1e6).toFixed(1).padStart(5)} ms  ${outcome}`);
  }
  await extractor.close();
}

onThread();
await inWorker();
