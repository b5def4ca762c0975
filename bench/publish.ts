/**
 * `npm run bench`: NodePublishVolume latency and driver memory, measured against dev-vault with
 * an injected per-request latency (default 20 ms, like a vault in a nearby region). The driver
 * runs as its own process, started through the CLI as the DaemonSet would, so its RSS is its own.
 *
 * Prints a table and writes bench/results.json. Options (env): BENCH_LATENCY_MS (20),
 * BENCH_ROUNDS (30 publishes per case), BENCH_MEMORY_PUBLISHES (500).
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { startDevVault } from '../src/devvault/server.js';
import { parseSeed } from '../src/devvault/seed.js';
import { CsiClient } from '../src/driver/client.js';
import { ephemeralVolume } from '../src/driver/kubelet-volume.js';
import { packageRoot } from '../src/package-info.js';
import { DEFAULT_FETCH_CONCURRENCY, DRIVER_NODE_OPTIONS } from '../src/config/driver-config.js';

const LATENCY_MS = Number(process.env.BENCH_LATENCY_MS ?? 20);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 30);
const MEMORY_PUBLISHES = Number(process.env.BENCH_MEMORY_PUBLISHES ?? 500);
const OBJECT_COUNTS = [1, 10] as const;


const seed = parseSeed(
  stringify({
    clients: [{ clientId: 'bench-client', clientSecret: 'bench-secret' }],
    secrets: Array.from({ length: 50 }, (_, i) => ({ name: `bench-${i}`, value: `value-${i}-${'x'.repeat(64)}` })),
  }),
  'bench seed',
);

interface Stats {
  median: number;
  p99: number;
  min: number;
}

function stats(samples: number[]): Stats {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
  return { median: round(at(0.5)), p99: round(at(0.99)), min: round(sorted[0] ?? NaN) };
}

const round = (n: number): number => Math.round(n * 10) / 10;

async function rssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  return round(kb / 1024);
}

async function startDriverProcess(work: string, vaultUrl: string, fetchConcurrency: number): Promise<{ child: ChildProcess; client: CsiClient; kubeletDir: string }> {
  const kubeletDir = join(work, `kubelet-${fetchConcurrency}`);
  await mkdir(kubeletDir, { recursive: true });
  const endpoint = `unix://${join(work, `csi-${fetchConcurrency}.sock`)}`;
  const child = spawn(
    process.execPath,
    [join(packageRoot, 'bin', 'podvault.js'), 'driver', '--endpoint', endpoint, '--standalone', join(work, 'classes'), '--kubelet-dir', kubeletDir,
      '--ca-file', join(work, 'ca.pem'), '--authority-host', vaultUrl, '--allow-vault-uri', vaultUrl, '--log-level', 'warn', '--fetch-concurrency', String(fetchConcurrency)],
    // The same V8 setting the DaemonSet uses: a 1 MiB young generation keeps the driver's resident
    // memory under 100 MiB at no measurable latency cost (bench: 101 MiB → 94.5 MiB after 561 publishes).
    { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, NODE_NAME: 'bench-node', NODE_OPTIONS: DRIVER_NODE_OPTIONS } },
  );
  const client = new CsiClient(endpoint);
  for (let i = 0; ; i++) {
    try {
      if ((await client.probe()).ready?.value) break;
    } catch (err) {
      if (i > 100) throw err;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { child, client, kubeletDir };
}

/** Run `work` against a fresh driver process, then stop it. */
async function withDriverProcess<T>(work: string, vaultUrl: string, fetchConcurrency: number, run: (d: { child: ChildProcess; client: CsiClient; kubeletDir: string }) => Promise<T>): Promise<T> {
  const driver = await startDriverProcess(work, vaultUrl, fetchConcurrency);
  try {
    return await run(driver);
  } finally {
    driver.client.close();
    driver.child.kill('SIGTERM');
    await new Promise((r) => driver.child.once('exit', r));
  }
}

let podSeq = 0;

/**
 * One fresh pod volume published and unpublished; returns the publish time in ms. With
 * `podIdentityDir`, the pod is described there with the label of the bench's AzureIdentityBinding
 * and the volume passes no secret (pod identity mode); otherwise it passes a nodePublishSecretRef.
 */
async function publishOnce(client: CsiClient, kubeletDir: string, className: string, podIdentityDir?: string): Promise<number> {
  // This call's own number: `podSeq` moves on while this call awaits (50 run at once), and reading
  // it after an await removed another pod's directory, mounted or not (the 50-pod stage's EBUSY).
  const seq = ++podSeq;
  const pod = { namespace: 'default', name: `bench-${seq}`, uid: `bench-uid-${seq}`, serviceAccount: 'default' };
  const podFile = podIdentityDir ? join(podIdentityDir, 'bench-pod.yaml') : undefined;
  if (podFile) {
    await writeFile(podFile, stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: pod.name, namespace: 'default', uid: pod.uid, labels: { aadpodidbinding: 'bench' } } }));
  }
  const v = ephemeralVolume({
    kubeletDir,
    pod,
    volumeName: 'secrets',
    className,
    secrets: podFile ? {} : { clientid: 'bench-client', clientsecret: 'bench-secret' },
  });
  await mkdir(join(v.targetPath, '..'), { recursive: true });
  const started = performance.now();
  await client.publish(v.request);
  const ms = performance.now() - started;
  await client.unpublish({ volumeId: v.volumeId, targetPath: v.targetPath });
  await rm(join(kubeletDir, 'pods', pod.uid), { recursive: true, force: true }); // not podSeq: pods run concurrently
  return ms;
}

async function main(): Promise<void> {
  const vault = await startDevVault({ seed, latencyMs: LATENCY_MS });
  const work = await mkdtemp('/dev/shm/podvault-bench-');
  await mkdir(join(work, 'classes'));
  await writeFile(join(work, 'ca.pem'), vault.caPem);
  await writeFile(
    join(work, 'classes', 'identity.yaml'),
    [
      { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'bench-sp' }, stringData: { clientSecret: 'bench-secret' } },
      { apiVersion: 'aadpodidentity.k8s.io/v1', kind: 'AzureIdentity', metadata: { name: 'bench-id' }, spec: { type: 1, tenantID: vault.tenantId, clientID: 'bench-client', clientPassword: { name: 'bench-sp', namespace: 'default' } } },
      { apiVersion: 'aadpodidentity.k8s.io/v1', kind: 'AzureIdentityBinding', metadata: { name: 'bench-binding' }, spec: { azureIdentity: 'bench-id', selector: 'bench' } },
      {
        apiVersion: 'secrets-store.csi.x-k8s.io/v1',
        kind: 'SecretProviderClass',
        metadata: { name: 'pod-identity-1' },
        spec: { provider: 'azure', parameters: { usePodIdentity: 'true', vaultUri: vault.url, tenantId: vault.tenantId, objects: stringify({ array: [stringify({ objectName: 'bench-0', objectType: 'secret' })] }) } },
      },
    ].map((o) => stringify(o)).join('---\n'),
  );
  for (const n of OBJECT_COUNTS) {
    await writeFile(
      join(work, 'classes', `objects-${n}.yaml`),
      stringify({
        apiVersion: 'secrets-store.csi.x-k8s.io/v1',
        kind: 'SecretProviderClass',
        metadata: { name: `objects-${n}` },
        spec: {
          provider: 'azure',
          parameters: {
            vaultUri: vault.url,
            tenantId: vault.tenantId,
            objects: stringify({ array: Array.from({ length: n }, (_, i) => stringify({ objectName: `bench-${i}`, objectType: 'secret' })) }),
          },
        },
      }),
    );
  }

  const results: Record<string, unknown> = { latencyMs: LATENCY_MS, rounds: ROUNDS, node: process.version, date: new Date().toISOString() };
  const table: string[] = [];
  try {
    for (const concurrency of [DEFAULT_FETCH_CONCURRENCY, 1]) {
      await withDriverProcess(work, vault.url, concurrency, async ({ child, client, kubeletDir }) => {
        const rssStart = await rssMiB(child.pid!);
        // The first publish pays for the token and the TLS handshakes; report it apart.
        const before = { ...vault.requests };
        const firstMs = await publishOnce(client, kubeletDir, 'objects-1');
        const firstRequests = Object.entries(vault.requests).map(([k, v]) => `${k}=${v - (before[k] ?? 0)}`).join(' ');
        const perCase: Record<string, Stats> = {};
        for (const n of OBJECT_COUNTS) {
          const samples: number[] = [];
          for (let i = 0; i < ROUNDS; i++) samples.push(await publishOnce(client, kubeletDir, `objects-${n}`));
          perCase[`objects_${n}`] = stats(samples);
          table.push(`fetch-concurrency ${concurrency}  ${String(n).padStart(2)} objects  median ${perCase[`objects_${n}`]!.median} ms  p99 ${perCase[`objects_${n}`]!.p99} ms`);
        }
        const entry: Record<string, unknown> = { firstPublishMs: round(firstMs), firstPublishRequests: firstRequests, rssAfterStartMiB: rssStart, ...perCase };
        if (concurrency !== 1) {
          for (let i = 0; i < MEMORY_PUBLISHES; i++) await publishOnce(client, kubeletDir, i % 2 ? 'objects-1' : 'objects-10');
          entry.rssAfterPublishesMiB = await rssMiB(child.pid!);
          entry.publishesForRss = MEMORY_PUBLISHES + 1 + ROUNDS * OBJECT_COUNTS.length;
        }
        results[`fetchConcurrency_${concurrency}`] = entry;
        table.push(`fetch-concurrency ${concurrency}  first publish ${round(firstMs)} ms (${firstRequests}); RSS after start ${rssStart} MiB${entry.rssAfterPublishesMiB ? `, after ${String(entry.publishesForRss)} publishes ${String(entry.rssAfterPublishesMiB)} MiB` : ''}`);
      });
    }
    // Pods starting at once with the same class: identical fetches in flight are shared, so 50 pods
    // should cost the vault no more requests than 2 do.
    await withDriverProcess(work, vault.url, DEFAULT_FETCH_CONCURRENCY + 2, async ({ client, kubeletDir }) => {
        await publishOnce(client, kubeletDir, 'objects-10'); // token and connections first
        for (const pods of [2, 50]) {
          const before = vault.requests.secret ?? 0;
          const started = performance.now();
          await Promise.all(Array.from({ length: pods }, () => publishOnce(client, kubeletDir, 'objects-10')));
          const entry = { wallMs: round(performance.now() - started), vaultSecretRequests: (vault.requests.secret ?? 0) - before };
          results[`concurrentPods_${pods}`] = entry;
          table.push(`${String(pods).padStart(2)} pods at once, 10 objects each: wall ${entry.wallMs} ms, ${entry.vaultSecretRequests} vault secret requests`);
        }
    });
    // Pod identity mode, in a fresh driver: the first publish fetches the identity's token (cold),
    // the next ones reuse the credential's cached token (warm).
    await withDriverProcess(work, vault.url, DEFAULT_FETCH_CONCURRENCY + 1, async ({ client, kubeletDir }) => {
        const tokensBefore = vault.requests.token ?? 0;
        const cold = await publishOnce(client, kubeletDir, 'pod-identity-1', join(work, 'classes'));
        const warm: number[] = [];
        for (let i = 0; i < ROUNDS; i++) warm.push(await publishOnce(client, kubeletDir, 'pod-identity-1', join(work, 'classes')));
        const entry = { coldTokenMs: round(cold), warm: stats(warm), tokenRequests: (vault.requests.token ?? 0) - tokensBefore };
        results.podIdentity_1object = entry;
        table.push(`pod identity, 1 object: cold token ${entry.coldTokenMs} ms, warm median ${entry.warm.median} ms p99 ${entry.warm.p99} ms; ${entry.tokenRequests} token request(s) for ${ROUNDS + 1} publishes`);
    });
    const concurrent = (results[`fetchConcurrency_${DEFAULT_FETCH_CONCURRENCY}`] as Record<string, Stats | undefined>).objects_10?.median ?? NaN;
    const sequential = (results.fetchConcurrency_1 as Record<string, Stats | undefined>).objects_10?.median ?? NaN;
    results.sequentialOverConcurrent_10objects = round(sequential / concurrent);
    table.push(`10 objects: sequential / concurrent median = ${String(results.sequentialOverConcurrent_10objects)}x (vault latency ${LATENCY_MS} ms per request)`);
    results.vaultRequests = vault.requests;
  } finally {
    await vault.close();
    await rm(work, { recursive: true, force: true });
  }
  process.stdout.write(`${table.join('\n')}\n`);
  await writeFile(join(packageRoot, 'bench', 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
