/**
 * `npm run bench:etcd-audit`: how fast `podvault etcd-audit` reads and classifies a cluster's
 * Secrets. Starts a real etcd (Debian's etcd-server, as the tests do), writes BENCH_AUDIT_OBJECTS
 * (10,000) Secrets as kube-apiserver would store them (70% KMS v2 envelopes of ~1.5 KB under two
 * key ids, 20% aescbc, 10% plaintext protobuf), then:
 *
 * - runs the CLI as its own process through bin/podvault.js, BENCH_AUDIT_ROUNDS (5) times with
 *   `--json`, at the default page size and at 100: wall time (Node start included) and the
 *   process's peak RSS (getrusage of the child, ru_maxrss);
 * - runs the audit in this process (runAudit) the same number of times: read + classify only.
 *
 * Objects per second = objects / median wall time. Prints a table and writes
 * bench/etcd-audit-results.json.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { parseAuditOptions } from '../src/etcd-audit/audit-options.js';
import { encodeEncryptedObject } from '../src/etcd-audit/encrypted-object.js';
import { ProgressLine } from '../src/etcd-audit/progress-line.js';
import { runAudit } from '../src/etcd-audit/run-audit.js';
import { packageRoot } from '../src/package-info.js';
import { startEtcd } from '../test/support/etcd-server.js';

const OBJECTS = Number(process.env.BENCH_AUDIT_OBJECTS ?? 10_000);
const ROUNDS = Number(process.env.BENCH_AUDIT_ROUNDS ?? 5);
const BIN = join(packageRoot, 'bin', 'podvault.js');

function storedValue(i: number): Buffer {
  const kind = i % 10;
  if (kind === 0) return Buffer.concat([Buffer.from('k8s\0\n\x0cv1\x12\x06Secret'), randomBytes(1200)]);
  if (kind <= 2) return Buffer.concat([Buffer.from('k8s:enc:aescbc:v1:key1:'), randomBytes(1232)]);
  const envelope = encodeEncryptedObject({
    encryptedData: randomBytes(1240),
    keyID: kind <= 6 ? 'bench-key-version-1' : 'bench-key-version-2',
    encryptedDEKSource: randomBytes(256),
    annotations: { 'kid.podvault.io': Buffer.from('https://bench.vault.azure.net/keys/k/0123456789abcdef'), 'alg.podvault.io': Buffer.from('RSA-OAEP-256') },
    encryptedDEKSourceType: 1,
  });
  return Buffer.concat([Buffer.from('k8s:enc:kms:v2:podvault:'), envelope]);
}

async function fill(endpoint: string): Promise<void> {
  const client = new Etcd3({ hosts: endpoint });
  try {
    for (let start = 0; start < OBJECTS; start += 200) {
      const batch = [];
      for (let i = start; i < Math.min(OBJECTS, start + 200); i++) {
        batch.push(client.put(`/registry/secrets/ns-${i % 50}/secret-${String(i).padStart(6, '0')}`).value(storedValue(i)));
      }
      await Promise.all(batch);
    }
  } finally {
    client.close();
  }
}

/** One CLI run through the real entry point: wall time, and the process's own peak RSS (ru_maxrss) written at its exit by a preloaded one-liner. */
function cliRun(args: readonly string[]): Promise<{ ms: number; maxRssMiB: number; total: number }> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(process.execPath, ['--import', 'data:text/javascript,process.on("exit",()=>process.stderr.write("RSS_KB="+process.resourceUsage().maxRSS+"\\n"))', BIN, 'etcd-audit', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', () => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      const rss = /RSS_KB=(\d+)/.exec(stderr);
      try {
        const report = JSON.parse(stdout) as { total: number };
        resolve({ ms, maxRssMiB: rss ? Number(rss[1]) / 1024 : NaN, total: report.total });
      } catch {
        reject(new Error(`etcd-audit gave no JSON: ${stderr.slice(0, 500)}`));
      }
    });
  });
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
};

async function main(): Promise<void> {
  const etcd = await startEtcd();
  try {
    const fillStart = Date.now();
    await fill(etcd.endpoint);
    process.stdout.write(`wrote ${OBJECTS} objects in ${Date.now() - fillStart} ms\n`);
    const results: Record<string, { medianMs: number; objectsPerSecond: number; maxRssMiB?: number }> = {};

    for (const pageSize of ['500', '100']) {
      const runs = [];
      for (let r = 0; r < ROUNDS; r++) runs.push(await cliRun(['--endpoints', etcd.endpoint, '--json', '--page-size', pageSize]));
      if (runs.some((run) => run.total !== OBJECTS)) throw new Error('the audit did not count every object');
      const ms = median(runs.map((run) => run.ms));
      results[`cli, page size ${pageSize}`] = { medianMs: ms, objectsPerSecond: (OBJECTS / ms) * 1000, maxRssMiB: median(runs.map((run) => run.maxRssMiB)) };
    }

    const options = await parseAuditOptions(
      { endpoints: etcd.endpoint, resources: 'secrets', prefix: '/registry', pageSize: '500', maxPageBytes: '16Mi', dialTimeout: '5s', commandTimeout: '30s', json: true },
      false,
    );
    const inProcess = [];
    for (let r = 0; r < ROUNDS; r++) {
      const started = process.hrtime.bigint();
      const { tally } = await runAudit(options, new ProgressLine(undefined));
      if (tally.total !== OBJECTS) throw new Error('the audit did not count every object');
      inProcess.push(Number(process.hrtime.bigint() - started) / 1e6);
    }
    const ms = median(inProcess);
    results['in process (read + classify), page size 500'] = { medianMs: ms, objectsPerSecond: (OBJECTS / ms) * 1000 };

    process.stdout.write(`\netcd-audit on ${OBJECTS} stored Secrets, median of ${ROUNDS} runs\n\n| case | median | objects/s | peak RSS |\n| --- | --- | --- | --- |\n`);
    for (const [name, r] of Object.entries(results)) {
      process.stdout.write(`| ${name} | ${r.medianMs.toFixed(0)} ms | ${r.objectsPerSecond.toFixed(0)} | ${r.maxRssMiB === undefined ? '' : `${r.maxRssMiB.toFixed(1)} MiB`} |\n`);
    }
    await writeFile(join(packageRoot, 'bench', 'etcd-audit-results.json'), `${JSON.stringify({ objects: OBJECTS, rounds: ROUNDS, results }, null, 2)}\n`);
  } finally {
    await etcd.stop();
  }
}

await main();
