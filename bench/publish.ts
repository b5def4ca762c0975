/**
 * `npm run bench`: NodePublishVolume latency, driver CPU and driver memory, measured against
 * dev-vault with an injected per-request latency (default 20 ms, like a vault in a nearby region).
 * The driver runs as its own process, started through the CLI as the DaemonSet would, so its RSS
 * and CPU time are its own: standalone mode, and Kubernetes mode against the API double.
 *
 * CPU per publish is the driver's utime+stime (/proc/<pid>/stat) over a run of publish+unpublish
 * cycles, divided by their number, with a 0 ms vault so vault latency is out of it; its children
 * (mount(8), umount(8)) are reported apart (cutime+cstime).
 *
 * Prints a table and writes bench/results.json. Options (env): BENCH_LATENCY_MS (20),
 * BENCH_ROUNDS (30 publishes per case), BENCH_CPU_ROUNDS (100), BENCH_MEMORY_PUBLISHES (500),
 * BENCH_NODE_OPTIONS (the driver's NODE_OPTIONS; default DRIVER_NODE_OPTIONS, as the DaemonSet),
 * BENCH_MALLOC_ARENA_MAX (default DRIVER_MALLOC_ARENA_MAX, as the DaemonSet; empty: glibc's own),
 * BENCH_NODE_ARGS (node flags before the script, which NODE_OPTIONS refuses: V8 flags, or
 * `--cpu-prof --cpu-prof-dir=DIR` to profile each driver, written when it stops), BENCH_DRIVER_ARGS
 * (more driver flags, e.g. `--mount-utility` to measure the mount(8) fallback), BENCH_CPU_ONLY=1 (only
 * the CPU cases, standalone and Kubernetes mode: no latency rounds, concurrency or memory stages),
 * BENCH_STAGES (a comma list of standalone, sequential, concurrent, pod-identity, kubernetes; all by
 * default) and BENCH_LIVE_HEAP=1: also report the driver's RSS and heap right after two forced full
 * GCs (bench/live-heap-probe.ts), beside the plain RSS, to tell live memory from GC headroom.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { startDevVault } from '../src/devvault/server.js';
import type { DevVaultOptions } from '../src/devvault/server.js';
import { KubeApiDouble } from '../src/devvault/kube-api-double.js';
import type { KubeObject } from '../src/devvault/kube-api-double.js';
import { parseSeed } from '../src/devvault/seed.js';
import { CsiClient } from '../src/driver/client.js';
import { ephemeralVolume } from '../src/driver/kubelet-volume.js';
import { packageRoot } from '../src/package-info.js';
import { DEFAULT_FETCH_CONCURRENCY, DRIVER_MALLOC_ARENA_MAX, DRIVER_NODE_OPTIONS } from '../src/config/driver-config.js';

const CPU_ONLY = process.env.BENCH_CPU_ONLY === '1';
const LATENCY_MS = Number(process.env.BENCH_LATENCY_MS ?? 20);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? (CPU_ONLY ? 0 : 30));
const CPU_ROUNDS = Number(process.env.BENCH_CPU_ROUNDS ?? 100);
const MEMORY_PUBLISHES = Number(process.env.BENCH_MEMORY_PUBLISHES ?? (CPU_ONLY ? 0 : 500));
const words = (value: string | undefined): string[] => (value ?? '').split(/\s+/).filter((a) => a !== '');
const DRIVER_ARGS = words(process.env.BENCH_DRIVER_ARGS);
const NODE_ARGS = words(process.env.BENCH_NODE_ARGS);
/** BENCH_CPU_CLASSES=objects-1,...: only these classes' standalone CPU cases (to profile one). */
const CPU_CLASSES = words(process.env.BENCH_CPU_CLASSES?.replaceAll(',', ' '));
const OBJECT_COUNTS = [1, 10] as const;
const STAGES = new Set((process.env.BENCH_STAGES ?? 'standalone,sequential,concurrent,pod-identity,kubernetes').split(','));
const LIVE_HEAP = process.env.BENCH_LIVE_HEAP === '1';
const NODE_OPTIONS = process.env.BENCH_NODE_OPTIONS ?? DRIVER_NODE_OPTIONS;
/** glibc's MALLOC_ARENA_MAX for the driver: BENCH_MALLOC_ARENA_MAX, empty for glibc's default. */
const MALLOC_ARENA_MAX = process.env.BENCH_MALLOC_ARENA_MAX ?? DRIVER_MALLOC_ARENA_MAX;
/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ: 100 on every Linux ABI Node runs on). */
const CLOCK_TICKS = 100;

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

const mib = (bytes: number): number => round(bytes / 1024 / 1024);

interface MemoryReading {
  rssMiB: number;
  /** With BENCH_LIVE_HEAP=1: RSS and V8 heap in use right after two full GCs. */
  rssAfterGcMiB?: number;
  heapUsedAfterGcMiB?: number;
  /** Of the RSS after GC: anonymous memory (heaps, malloc) and mapped files (the node binary). */
  rssAnonMiB?: number;
  rssFileMiB?: number;
  /** MiB in use per V8 heap space after GC (old_space, code_space, …). */
  spacesMiB?: Record<string, number>;
}

/** The driver's RSS now, then (BENCH_LIVE_HEAP=1) its RSS and heap after forced full GCs. */
async function memory(child: ChildProcess, probeFile: string): Promise<MemoryReading> {
  const rss = await rssMiB(child.pid!);
  if (!LIVE_HEAP) return { rssMiB: rss };
  await rm(probeFile, { force: true });
  child.kill('SIGUSR2');
  for (let i = 0; i < 100; i++) {
    const text = await readFile(probeFile, 'utf8').catch(() => '');
    if (text) {
      const usage = JSON.parse(text) as NodeJS.MemoryUsage & { spaces: Record<string, number> };
      const status = await readFile(`/proc/${child.pid!}/status`, 'utf8');
      const kib = (field: string): number => mib(Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN) * 1024);
      const spacesMiB = Object.fromEntries(Object.entries(usage.spaces).map(([name, bytes]) => [name, mib(bytes)]));
      return { rssMiB: rss, rssAfterGcMiB: mib(usage.rss), heapUsedAfterGcMiB: mib(usage.heapUsed), rssAnonMiB: kib('RssAnon'), rssFileMiB: kib('RssFile'), spacesMiB };
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('the live-heap probe did not answer');
}

/** Where the driver started with this fetch concurrency (each stage's own) writes its probe readings. */
const probeFile = (work: string, fetchConcurrency: number): string => join(work, `probe-${fetchConcurrency}.json`);

const memoryText = (m: MemoryReading): string => `${m.rssMiB} MiB${m.rssAfterGcMiB === undefined ? '' : ` (after full GC ${m.rssAfterGcMiB} MiB RSS, ${m.heapUsedAfterGcMiB} MiB heap)`}`;

interface CpuTimes {
  /** The driver's own user+system CPU time, ms. */
  selfMs: number;
  /** Its waited-for children's (mount(8), umount(8)), ms. */
  childrenMs: number;
}

/** utime+stime and cutime+cstime of a process, from /proc/<pid>/stat. */
async function cpuTimes(pid: number): Promise<CpuTimes> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces, so split after its closing parenthesis):
  // state is field 3, utime..cstime are fields 14..17.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
  const at = (field: number): number => fields[field - 3] ?? NaN;
  return { selfMs: ((at(14) + at(15)) * 1000) / CLOCK_TICKS, childrenMs: ((at(16) + at(17)) * 1000) / CLOCK_TICKS };
}

/** CPU time the driver spent inside publish and inside unpublish calls, summed over calls. */
class CpuMeter {
  readonly publish: CpuTimes = { selfMs: 0, childrenMs: 0 };
  readonly unpublish: CpuTimes = { selfMs: 0, childrenMs: 0 };
  constructor(readonly pid: number) {}

  /** Run `call`, adding the driver's CPU time during it to `into`. */
  async measure<T>(into: CpuTimes, call: () => Promise<T>): Promise<T> {
    const before = await cpuTimes(this.pid);
    const result = await call();
    const after = await cpuTimes(this.pid);
    into.selfMs += after.selfMs - before.selfMs;
    into.childrenMs += after.childrenMs - before.childrenMs;
    return result;
  }
}

interface CpuCase {
  /** Per call, ms: the driver's own CPU in NodePublishVolume, and its mount(8) children's. */
  publishCpuMs: number;
  publishChildrenCpuMs: number;
  unpublishCpuMs: number;
  unpublishChildrenCpuMs: number;
  wall: Stats;
}

/** CPU per publish and per unpublish over `rounds` cycles of `run`, plus their wall-time stats. */
async function cpuPerPublish(pid: number, rounds: number, run: (meter?: CpuMeter) => Promise<number>): Promise<CpuCase> {
  const meter = new CpuMeter(pid);
  const samples: number[] = [];
  for (let i = 0; i < rounds; i++) samples.push(await run(meter));
  const per = (ms: number): number => round(ms / rounds);
  return { publishCpuMs: per(meter.publish.selfMs), publishChildrenCpuMs: per(meter.publish.childrenMs), unpublishCpuMs: per(meter.unpublish.selfMs), unpublishChildrenCpuMs: per(meter.unpublish.childrenMs), wall: stats(samples) };
}

/** `--standalone DIR` or `--kubeconfig FILE`: where the driver reads classes and identities. */
type ClusterArgs = ['--standalone', string] | ['--kubeconfig', string];

async function startDriverProcess(work: string, vaultUrl: string, fetchConcurrency: number, cluster: ClusterArgs): Promise<{ child: ChildProcess; client: CsiClient; kubeletDir: string }> {
  const kubeletDir = join(work, `kubelet-${fetchConcurrency}`);
  await mkdir(kubeletDir, { recursive: true });
  const endpoint = `unix://${join(work, `csi-${fetchConcurrency}.sock`)}`;
  const child = spawn(
    process.execPath,
    [...NODE_ARGS, join(packageRoot, 'bin', 'podvault.js'), 'driver', '--endpoint', endpoint, ...cluster, '--kubelet-dir', kubeletDir,
      '--ca-file', join(work, 'ca.pem'), '--authority-host', vaultUrl, '--allow-vault-uri', vaultUrl, '--log-level', 'warn', '--fetch-concurrency', String(fetchConcurrency), ...DRIVER_ARGS],
    // The same V8 settings the DaemonSet uses (DRIVER_NODE_OPTIONS says why); BENCH_NODE_OPTIONS
    // replaces them to compare others.
    // BENCH_LIVE_HEAP adds the probe that forces full GCs on SIGUSR2.
    { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, NODE_NAME: 'bench-node', NODE_OPTIONS: LIVE_HEAP ? `${NODE_OPTIONS} --expose-gc --import ${join(packageRoot, 'dist', 'bench', 'live-heap-probe.js')}` : NODE_OPTIONS, BENCH_PROBE_FILE: probeFile(work, fetchConcurrency), ...(MALLOC_ARENA_MAX ? { MALLOC_ARENA_MAX } : {}) } },
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
async function withDriverProcess<T>(work: string, vaultUrl: string, fetchConcurrency: number, run: (d: { child: ChildProcess; client: CsiClient; kubeletDir: string }) => Promise<T>, cluster: ClusterArgs = ['--standalone', join(work, 'classes')]): Promise<T> {
  const driver = await startDriverProcess(work, vaultUrl, fetchConcurrency, cluster);
  try {
    return await run(driver);
  } finally {
    driver.client.close();
    driver.child.kill('SIGTERM');
    await new Promise((r) => driver.child.once('exit', r));
  }
}

let podSeq = 0;

/** Where the bench's pods are described for pod identity mode: the standalone directory or the API double. */
type PodDirectory = string | KubeApiDouble;

/**
 * One fresh pod volume published and unpublished; returns the publish time in ms. With
 * `podIdentity`, the pod is described there with the label of the bench's AzureIdentityBinding
 * and the volume passes no secret (pod identity mode); otherwise it passes a nodePublishSecretRef.
 */
async function publishOnce(client: CsiClient, kubeletDir: string, className: string, podIdentity?: PodDirectory, cpu?: CpuMeter): Promise<number> {
  // This call's own number: `podSeq` moves on while this call awaits (50 run at once), and reading
  // it after an await removed another pod's directory, mounted or not (the 50-pod stage's EBUSY).
  const seq = ++podSeq;
  const pod = { namespace: 'default', name: `bench-${seq}`, uid: `bench-uid-${seq}`, serviceAccount: 'default' };
  const podObject = { apiVersion: 'v1', kind: 'Pod', metadata: { name: pod.name, namespace: 'default', uid: pod.uid, labels: { aadpodidbinding: 'bench' } }, spec: { serviceAccountName: 'default', containers: [{ name: 'app', image: 'app' }] } };
  if (typeof podIdentity === 'string') await writeFile(join(podIdentity, 'bench-pod.yaml'), stringify(podObject));
  else podIdentity?.put('pods', podObject);
  const v = ephemeralVolume({
    kubeletDir,
    pod,
    volumeName: 'secrets',
    className,
    secrets: podIdentity ? {} : { clientid: 'bench-client', clientsecret: 'bench-secret' },
  });
  await mkdir(join(v.targetPath, '..'), { recursive: true });
  const started = performance.now();
  await (cpu ? cpu.measure(cpu.publish, () => client.publish(v.request)) : client.publish(v.request));
  const ms = performance.now() - started;
  const unpublish = (): Promise<unknown> => client.unpublish({ volumeId: v.volumeId, targetPath: v.targetPath });
  await (cpu ? cpu.measure(cpu.unpublish, unpublish) : unpublish());
  await rm(join(kubeletDir, 'pods', pod.uid), { recursive: true, force: true }); // not podSeq: pods run concurrently
  if (podIdentity instanceof KubeApiDouble) podIdentity.delete('pods', 'v1', 'default', pod.name);
  return ms;
}

async function main(): Promise<void> {
  // dev-vault reads `latencyMs` at every request: the CPU cases set it to 0 for their run.
  const vaultOptions: DevVaultOptions = { seed, latencyMs: LATENCY_MS };
  const vault = await startDevVault(vaultOptions);
  /** Driver CPU per publish+unpublish cycle of `run`, with a 0 ms vault. */
  const cpuCase = async (pid: number, run: (meter?: CpuMeter) => Promise<number>): Promise<CpuCase> => {
    vaultOptions.latencyMs = 0;
    try {
      await run(); // warm: the class and the credential are not what this measures
      return await cpuPerPublish(pid, CPU_ROUNDS, run);
    } finally {
      vaultOptions.latencyMs = LATENCY_MS;
    }
  };
  const cpuLine = (label: string, c: CpuCase): string =>
    `${label}, 0 ms vault: CPU per publish ${c.publishCpuMs} ms driver + ${c.publishChildrenCpuMs} ms children (mount(8)); per unpublish ${c.unpublishCpuMs} ms + ${c.unpublishChildrenCpuMs} ms children (umount(8)); publish wall median ${c.wall.median} ms`;
  const work = await mkdtemp('/dev/shm/podvault-bench-');
  await mkdir(join(work, 'classes'));
  await writeFile(join(work, 'ca.pem'), vault.caPem);
  // The cluster the driver sees, in both modes: an identity with its binding and secret, a pod
  // identity class and nodePublishSecretRef classes of 1 and 10 objects, all in namespace default.
  const objectsParameter = (n: number): string => stringify({ array: Array.from({ length: n }, (_, i) => stringify({ objectName: `bench-${i}`, objectType: 'secret' })) });
  const spc = (name: string, parameters: Record<string, string>): KubeObject => ({ apiVersion: 'secrets-store.csi.x-k8s.io/v1', kind: 'SecretProviderClass', metadata: { name }, spec: { provider: 'azure', parameters: { vaultUri: vault.url, tenantId: vault.tenantId, ...parameters } } });
  const cluster: Array<{ plural: string; object: KubeObject }> = [
    { plural: 'secrets', object: { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'bench-sp' }, data: { clientSecret: Buffer.from('bench-secret').toString('base64') } } },
    { plural: 'azureidentities', object: { apiVersion: 'aadpodidentity.k8s.io/v1', kind: 'AzureIdentity', metadata: { name: 'bench-id' }, spec: { type: 1, tenantID: vault.tenantId, clientID: 'bench-client', clientPassword: { name: 'bench-sp', namespace: 'default' } } } },
    { plural: 'azureidentitybindings', object: { apiVersion: 'aadpodidentity.k8s.io/v1', kind: 'AzureIdentityBinding', metadata: { name: 'bench-binding' }, spec: { azureIdentity: 'bench-id', selector: 'bench' } } },
    { plural: 'secretproviderclasses', object: spc('pod-identity-1', { usePodIdentity: 'true', objects: objectsParameter(1) }) },
    ...OBJECT_COUNTS.map((n) => ({ plural: 'secretproviderclasses', object: spc(`objects-${n}`, { objects: objectsParameter(n) }) })),
  ];
  await writeFile(join(work, 'classes', 'cluster.yaml'), cluster.map(({ object }) => stringify(object)).join('---\n'));

  const results: Record<string, unknown> = { latencyMs: LATENCY_MS, rounds: ROUNDS, driverArgs: DRIVER_ARGS, nodeOptions: NODE_OPTIONS, nodeArgs: NODE_ARGS.join(' '), mallocArenaMax: MALLOC_ARENA_MAX, liveHeap: LIVE_HEAP, node: process.version, date: new Date().toISOString() };
  const table: string[] = [];
  try {
    for (const concurrency of CPU_ONLY ? [DEFAULT_FETCH_CONCURRENCY] : [DEFAULT_FETCH_CONCURRENCY, 1]) {
      if (!STAGES.has(concurrency === 1 ? 'sequential' : 'standalone')) continue;
      await withDriverProcess(work, vault.url, concurrency, async ({ child, client, kubeletDir }) => {
        const start = await memory(child, probeFile(work, concurrency));
        const rssStart = start.rssMiB;
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
        const entry: Record<string, unknown> = { firstPublishMs: round(firstMs), firstPublishRequests: firstRequests, rssAfterStartMiB: rssStart, ...(LIVE_HEAP ? { memoryAfterStart: start } : {}), ...perCase };
        let afterPublishes: MemoryReading | undefined;
        if (concurrency !== 1) {
          for (const [label, className, pods] of [['1 object', 'objects-1'], ['10 objects', 'objects-10'], ['pod identity, 1 object', 'pod-identity-1', join(work, 'classes')]] as const) {
            if (CPU_CLASSES.length > 0 && !CPU_CLASSES.includes(className)) continue;
            const c = await cpuCase(child.pid!, (meter) => publishOnce(client, kubeletDir, className, pods, meter));
            entry[`cpu_${className}`] = c;
            table.push(cpuLine(`standalone, ${label}`, c));
          }
          for (let i = 0; i < MEMORY_PUBLISHES; i++) await publishOnce(client, kubeletDir, i % 2 ? 'objects-1' : 'objects-10');
          afterPublishes = await memory(child, probeFile(work, concurrency));
          entry.rssAfterPublishesMiB = afterPublishes.rssMiB;
          if (LIVE_HEAP) entry.memoryAfterPublishes = afterPublishes;
          entry.publishesForRss = MEMORY_PUBLISHES + 1 + ROUNDS * OBJECT_COUNTS.length;
        }
        results[`fetchConcurrency_${concurrency}`] = entry;
        table.push(`fetch-concurrency ${concurrency}  first publish ${round(firstMs)} ms (${firstRequests}); RSS after start ${memoryText(start)}${afterPublishes ? `, after ${String(entry.publishesForRss)} publishes ${memoryText(afterPublishes)}` : ''}`);
      });
    }
    // Pods starting at once with the same class: identical fetches in flight are shared, so 50 pods
    // should cost the vault no more requests than 2 do.
    if (!CPU_ONLY && STAGES.has('concurrent')) await withDriverProcess(work, vault.url, DEFAULT_FETCH_CONCURRENCY + 2, async ({ client, kubeletDir }) => {
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
    if (!CPU_ONLY && STAGES.has('pod-identity')) await withDriverProcess(work, vault.url, DEFAULT_FETCH_CONCURRENCY + 1, async ({ client, kubeletDir }) => {
        const tokensBefore = vault.requests.token ?? 0;
        const cold = await publishOnce(client, kubeletDir, 'pod-identity-1', join(work, 'classes'));
        const warm: number[] = [];
        for (let i = 0; i < ROUNDS; i++) warm.push(await publishOnce(client, kubeletDir, 'pod-identity-1', join(work, 'classes')));
        const entry = { coldTokenMs: round(cold), warm: stats(warm), tokenRequests: (vault.requests.token ?? 0) - tokensBefore };
        results.podIdentity_1object = entry;
        table.push(`pod identity, 1 object: cold token ${entry.coldTokenMs} ms, warm median ${entry.warm.median} ms p99 ${entry.warm.p99} ms; ${entry.tokenRequests} token request(s) for ${ROUNDS + 1} publishes`);
    });
    // Kubernetes mode: the driver reads the pods, classes and identity objects from the API double
    // through @kubernetes/client-node, as in a cluster; half the publishes use pod identity.
    const api = STAGES.has('kubernetes') ? await new KubeApiDouble().start() : undefined;
    if (api) try {
      for (const { plural, object } of cluster) api.put(plural, object);
      const kubeconfig = await api.writeKubeconfig();
      await withDriverProcess(work, vault.url, DEFAULT_FETCH_CONCURRENCY + 3, async ({ child, client, kubeletDir }) => {
        const start = await memory(child, probeFile(work, DEFAULT_FETCH_CONCURRENCY + 3));
        const firstMs = await publishOnce(client, kubeletDir, 'pod-identity-1', api);
        const warm: number[] = [];
        for (let i = 0; i < ROUNDS; i++) warm.push(await publishOnce(client, kubeletDir, 'pod-identity-1', api));
        const cpuPodIdentity = await cpuCase(child.pid!, (meter) => publishOnce(client, kubeletDir, 'pod-identity-1', api, meter));
        const cpuObjects1 = await cpuCase(child.pid!, (meter) => publishOnce(client, kubeletDir, 'objects-1', undefined, meter));
        for (let i = 0; i < MEMORY_PUBLISHES; i++) await publishOnce(client, kubeletDir, i % 2 ? 'pod-identity-1' : 'objects-10', i % 2 ? api : undefined);
        const afterPublishes = await memory(child, probeFile(work, DEFAULT_FETCH_CONCURRENCY + 3));
        const entry = {
          rssAfterStartMiB: start.rssMiB,
          ...(LIVE_HEAP ? { memoryAfterStart: start, memoryAfterPublishes: afterPublishes } : {}),
          firstPublishMs: round(firstMs),
          podIdentityWarm: stats(warm),
          cpu_podIdentity1: cpuPodIdentity,
          cpu_objects1: cpuObjects1,
          rssAfterPublishesMiB: afterPublishes.rssMiB,
          publishesForRss: MEMORY_PUBLISHES + 3 + ROUNDS + 2 * CPU_ROUNDS,
        };
        results.kubernetes = entry;
        table.push(`kubernetes mode, pod identity 1 object: first ${entry.firstPublishMs} ms, warm median ${entry.podIdentityWarm.median} ms p99 ${entry.podIdentityWarm.p99} ms`);
        table.push(cpuLine('kubernetes mode, pod identity 1 object', cpuPodIdentity));
        table.push(cpuLine('kubernetes mode, 1 object', cpuObjects1));
        table.push(`kubernetes mode: RSS after start ${memoryText(start)}, after ${entry.publishesForRss} publishes ${memoryText(afterPublishes)}`);
      }, ['--kubeconfig', kubeconfig]);
    } finally {
      await api.close();
    }
    const concurrent = (results[`fetchConcurrency_${DEFAULT_FETCH_CONCURRENCY}`] as Record<string, Stats | undefined> | undefined)?.objects_10?.median ?? NaN;
    const sequential = (results.fetchConcurrency_1 as Record<string, Stats | undefined> | undefined)?.objects_10?.median ?? NaN;
    results.sequentialOverConcurrent_10objects = round(sequential / concurrent);
    if (!CPU_ONLY && STAGES.has('standalone') && STAGES.has('sequential')) table.push(`10 objects: sequential / concurrent median = ${String(results.sequentialOverConcurrent_10objects)}x (vault latency ${LATENCY_MS} ms per request)`);
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
