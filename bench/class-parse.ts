/**
 * How long parsing a SecretProviderClass blocks the event loop, for a class at the
 * --max-class-size limit and for the 1.7 MB class of finding 3 (refused before parsing now).
 * Run after `npm run build`: `node dist/bench/class-parse.js`. Prints one line per case.
 */
import { stringify } from 'yaml';
import { parseAzureParameters } from '../src/providers/azure/parameters.js';
import { DEFAULT_FETCH_LIMITS, parametersBytes } from '../src/providers/fetch-limits.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 20);

/** The `objects` parameter with `n` aliases of one object, as the attack wrote it. */
function aliasesClass(n: number, pad = 0): Record<string, string> {
  const objects = stringify({ array: Array.from({ length: n }, (_, i) => stringify({ objectName: 'db-big', objectType: 'secret', objectAlias: `copy-${i}${'x'.repeat(pad)}` })) });
  return { vaultUri: 'https://127.0.0.1:8443', tenantId: 'tenant', objects };
}

/** The largest alias class that fits `bytes`. */
function classAt(bytes: number): Record<string, string> {
  let lo = 1;
  let hi = 10_000;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (parametersBytes(aliasesClass(mid)) <= bytes) lo = mid;
    else hi = mid - 1;
  }
  return aliasesClass(lo);
}

function time(label: string, params: Record<string, string>, limits = DEFAULT_FETCH_LIMITS): void {
  const samples: number[] = [];
  let outcome = '';
  for (let i = 0; i < ROUNDS; i++) {
    const started = performance.now();
    try {
      outcome = `${parseAzureParameters(params, { limits }).objects.length} objects`;
    } catch (err) {
      outcome = `refused: ${(err as Error).message}`;
    }
    samples.push(performance.now() - started);
  }
  samples.sort((a, b) => a - b);
  const median = samples[Math.floor(samples.length / 2)] ?? NaN;
  console.log(`${label}: ${parametersBytes(params)} bytes, median ${median.toFixed(2)} ms, max ${(samples.at(-1) ?? NaN).toFixed(2)} ms (${outcome})`);
}

const atLimit = classAt(DEFAULT_FETCH_LIMITS.maxClassBytes);
time('class at --max-class-size (default), short entries', atLimit);
time('same, --max-class-objects lifted', atLimit, { ...DEFAULT_FETCH_LIMITS, maxObjects: 100_000 });
// The worst a class within both default limits can cost: 256 objects padded up to 64 KiB.
let pad = 0;
while (parametersBytes(aliasesClass(DEFAULT_FETCH_LIMITS.maxObjects, pad + 1)) <= DEFAULT_FETCH_LIMITS.maxClassBytes) pad += 1;
time('class at both default limits (256 objects, 64 KiB)', aliasesClass(DEFAULT_FETCH_LIMITS.maxObjects, pad));
time('typical class, 20 objects', aliasesClass(20));
const attack = aliasesClass(24_000);
time('1.7 MB class, default limits', attack);
time('1.7 MB class, limits lifted (as before the fix)', attack, { ...DEFAULT_FETCH_LIMITS, maxClassBytes: 4 * 1024 ** 2, maxObjects: 100_000 });
