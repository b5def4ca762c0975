/**
 * `node dist/bench/import-cost.js`: what importing each dependency (and podvault's own module
 * sets) costs a fresh process, with the DaemonSet's V8 settings (DRIVER_NODE_OPTIONS). Each case
 * runs in its own child process: import, two full GCs, then RSS and V8 heap in use; the table shows
 * them beside an empty process's. Median of BENCH_RUNS (3) runs per case. Imports are not
 * additive (modules share dependencies), so a set is measured as one case where it matters. The
 * child loads nothing but what it measures (this file imports only node: modules statically).
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const KUBE = '@kubernetes/client-node/dist';

/** Label → module specifiers imported together (resolved from this file: node_modules, or ../src). */
const CASES: Array<[string, string[]]> = [
  ['nothing', []],
  ['@kubernetes/client-node (index)', ['@kubernetes/client-node']],
  ['client-node dist/config.js (KubeConfig)', [`${KUBE}/config.js`]],
  ['client-node dist/watch.js (Watch)', [`${KUBE}/watch.js`]],
  ['client-node dist/cache.js (ListWatch)', [`${KUBE}/cache.js`]],
  ['client-node dist/informer.js', [`${KUBE}/informer.js`]],
  ['client-node dist/gen/models/ObjectSerializer.js', [`${KUBE}/gen/models/ObjectSerializer.js`]],
  ['client-node dist/gen/apis/CoreV1Api.js', [`${KUBE}/gen/apis/CoreV1Api.js`]],
  ['client-node dist/gen/apis/exception.js (ApiException)', [`${KUBE}/gen/apis/exception.js`]],
  ['@azure/identity', ['@azure/identity']],
  ['@azure/keyvault-secrets', ['@azure/keyvault-secrets']],
  ['@azure/keyvault-keys', ['@azure/keyvault-keys']],
  ['@azure/keyvault-certificates', ['@azure/keyvault-certificates']],
  ['pino', ['pino']],
  ['prom-client', ['prom-client']],
  ['@grpc/grpc-js', ['@grpc/grpc-js']],
  ['@grpc/proto-loader', ['@grpc/proto-loader']],
  ['node-forge', ['node-forge']],
  ['zod', ['zod']],
  ['yaml', ['yaml']],
  ['podvault driver, standalone (src/driver/server.js)', ['../src/driver/server.js']],
  ['podvault driver + its Kubernetes modules (src/kube/kube-*.js)', ['../src/driver/server.js', '../src/kube/kube-class-source.js', '../src/kube/kube-identity-objects.js', '../src/kube/kube-service-account-keys.js', '../src/kube/kube-event-recorder.js', '../src/kube/kube-pod-status-writer.js', '../src/kube/kube-caches.js']],
];

interface Reading {
  rssMiB: number;
  heapMiB: number;
}

const mib = (bytes: number): number => Math.round((bytes / 1024 / 1024) * 10) / 10;

async function child(specifiers: string[]): Promise<void> {
  for (const specifier of specifiers) await import(specifier);
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  gc?.();
  const usage = process.memoryUsage();
  process.stdout.write(JSON.stringify({ rssMiB: mib(usage.rss), heapMiB: mib(usage.heapUsed) }));
}

function measure(nodeOptions: string, specifiers: string[]): Promise<Reading> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [...nodeOptions.split(' '), '--expose-gc', fileURLToPath(import.meta.url), '--child', ...specifiers], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    proc.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    proc.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out) as Reading) : reject(new Error(`${specifiers.join(', ')}: child exited ${code}`))));
  });
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;

async function main(): Promise<void> {
  const { DRIVER_NODE_OPTIONS } = await import('../src/config/driver-config.js');
  const rows: Array<{ label: string } & Reading> = [];
  for (const [label, specifiers] of CASES) {
    const readings: Reading[] = [];
    for (let i = 0; i < RUNS; i++) readings.push(await measure(DRIVER_NODE_OPTIONS, specifiers));
    rows.push({ label, rssMiB: median(readings.map((r) => r.rssMiB)), heapMiB: median(readings.map((r) => r.heapMiB)) });
  }
  const base = rows[0]!;
  const delta = (n: number): string => `${n >= 0 ? '+' : ''}${Math.round(n * 10) / 10}`;
  process.stdout.write(`node ${process.version}, ${DRIVER_NODE_OPTIONS}; an empty process: ${base.rssMiB} MiB RSS, ${base.heapMiB} MiB heap\n`);
  for (const row of rows.slice(1)) {
    process.stdout.write(`${row.label.padEnd(66)} RSS ${delta(row.rssMiB - base.rssMiB).padStart(6)} MiB  heap ${delta(row.heapMiB - base.heapMiB).padStart(6)} MiB\n`);
  }
}

if (process.argv[2] === '--child') await child(process.argv.slice(3));
else await main();
