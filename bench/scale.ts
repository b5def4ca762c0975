/**
 * `npm run bench:scale`: what rotation costs the vault as the cluster grows, with and without the
 * version watch (issue 12's measurement).
 *
 * One dev-vault (HTTPS) holds K distinct secrets; one API double holds the SecretProviderClasses
 * (ceil(K / CLASS_OBJECTS) classes of CLASS_OBJECTS objects each, together naming the K secrets).
 * N driver processes (`bin/podvault.js driver` in Kubernetes mode against the API double, one
 * process per simulated node: node-i, its own kubelet directory under /dev/shm and its own socket)
 * each get M volumes published, pod j of a node using class j mod classes, every pod as the same
 * app client (nodePublishSecretRef). This process plays the kubelet through the CSI client and
 * does not republish: the drivers' rotation timer rotates the volumes.
 *
 * Each N runs twice: without the watch (drivers without --version-watch, no watcher), and with it
 * (one `podvault version-watch` process polling every rotation interval as a Key Vault Reader, and
 * drivers with --version-watch). In each run, INTERVALS windows of one rotation interval each;
 * at the start of each window one object gets a new version (store.setSecret), and dev-vault's
 * request log, by the client id its tokens name, gives per window: value GETs (the app client's
 * `GET /secrets/{name}/{version}`), metadata reads (the watcher's client) and token requests. Each
 * driver's RSS (VmRSS) and CPU time (utime+stime, /proc/<pid>/stat) are sampled at every window.
 * Without the watch a run's volumes rotate together, so a window holds one rotation's reads or
 * none: the mean per interval is the figure, the median is printed beside it. The drivers share
 * this machine's mount table (every node's tmpfs mounts), which a real node's driver does not.
 *
 * Prints a table and the extrapolation to 1,000 nodes × 30 pods × 5 objects at 2 minutes, and
 * writes bench/scale-results.json. Options (env): BENCH_NODES (1,5,20,40: node counts; one whose
 * drivers would not fit in the free memory is skipped and said so), BENCH_PODS (M, 10),
 * BENCH_OBJECTS (K, 20), BENCH_CLASS_OBJECTS (5), BENCH_INTERVAL (the drivers' --rotation-interval
 * and the watcher's --interval, 5s), BENCH_INTERVALS (measured windows per run, 9).
 *
 * Everything it starts is stopped in `finally` (and on SIGINT/SIGTERM): volumes unpublished (so
 * their tmpfs mounts go; any left behind are unmounted), drivers and the watcher stopped, the work
 * directory removed.
 */
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { freemem } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { DRIVER_MALLOC_ARENA_MAX, DRIVER_NODE_OPTIONS, parseDuration } from '../src/config/driver-config.js';
import { KubeApiDouble } from '../src/devvault/kube-api-double.js';
import { parseSeed } from '../src/devvault/seed.js';
import { startDevVault } from '../src/devvault/server.js';
import type { DevVault } from '../src/devvault/server.js';
import { CsiClient } from '../src/driver/client.js';
import { ephemeralVolume } from '../src/driver/kubelet-volume.js';
import type { EphemeralVolume } from '../src/driver/kubelet-volume.js';
import { readMountInfo } from '../src/driver/mountinfo.js';
import { packageRoot } from '../src/package-info.js';
import { mapLimit } from '../src/util/map-limit.js';
import { VOV_API_VERSION, VOV_PLURAL, versionsObjectName, versionsStatusSchema } from '../src/version-watch/versions-resource.js';

const list = (value: string | undefined, fallback: string): number[] => (value ?? fallback).split(',').map(Number).filter((n) => Number.isInteger(n) && n > 0);
const NODE_COUNTS = list(process.env.BENCH_NODES, '1,5,20,40');
const PODS = Number(process.env.BENCH_PODS ?? 10);
const OBJECTS = Number(process.env.BENCH_OBJECTS ?? 20);
const CLASS_OBJECTS = Number(process.env.BENCH_CLASS_OBJECTS ?? 5);
/**
 * 5 s, not 2 s: a driver's timer rotation of 10 volumes costs about 13 ms of CPU per volume, with
 * or without the watch, and an idle driver about 15 ms per second (measured on this machine), so
 * 40 drivers rotating every 2 s would need more than the machine's 2 cores and the figures would
 * measure the CPU shortage instead of the requests. `effectivePeriodS` (without the watch) says
 * whether the drivers kept up: 1.5 intervals when they did.
 */
const INTERVAL = process.env.BENCH_INTERVAL ?? '5s';
const INTERVAL_MS = parseDuration(INTERVAL);
/**
 * A multiple of 3: the drivers' timer rotates each volume every 1.5 intervals, all of a run's
 * volumes together, so 3 intervals hold exactly 2 rotations whatever the phase, and the mean is
 * not off by a rotation.
 */
const INTERVALS = Number(process.env.BENCH_INTERVALS ?? 9);
const CLASSES = Math.ceil(OBJECTS / CLASS_OBJECTS);
/** RSS a driver is given when deciding whether N of them fit (measured ~100-120 MiB, plus margin). */
const DRIVER_BUDGET_MIB = 160;
/** Drivers started at once: each spends a second or two of CPU loading, and the machine has 2 cores. */
const STARTS_AT_ONCE = 4;
/** Publishes (and unpublishes) in flight at once, over all drivers. */
const PUBLISHES_AT_ONCE = 8;
/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ: 100 on every Linux ABI Node runs on). */
const CLOCK_TICKS = 100;
const NAMESPACE = 'podvault';
const ROTATION_FAILED = 'rotation failed; the mounted files are kept and the next republish retries';
const VAULT_RETRY = 'vault request failed; retrying';
const ROTATION_UNCHANGED = 'rotation check: nothing changed';
const ROTATION_SWAPPED = 'rotated: new contents swapped in';
const APP_CLIENT = { clientId: 'scale-app', clientSecret: 'scale-app-secret' };
const WATCHER_CLIENT = { clientId: 'scale-watch-reader', clientSecret: 'scale-watch-reader-secret' };
const BIN = join(packageRoot, 'bin', 'podvault.js');
const OUTPUT = join(packageRoot, 'bench', 'scale-results.json');

const round = (n: number): number => Math.round(n * 10) / 10;
const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const mid = Math.floor(s.length / 2);
  return round(s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2);
};
const mean = (xs: readonly number[]): number => round(xs.reduce((a, b) => a + b, 0) / xs.length);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const objectName = (i: number): string => `scale-${i}`;
const className = (c: number): string => `scale-class-${c}`;

/** Resident memory (MiB) and user+system CPU time (ms) of a process, from /proc; undefined once it is gone. */
async function sample(pid: number): Promise<{ rssMiB: number; cpuMs: number } | undefined> {
  try {
    const [status, stat] = await Promise.all([readFile(`/proc/${pid}/status`, 'utf8'), readFile(`/proc/${pid}/stat`, 'utf8')]);
    // Fields after the command name (which may hold spaces): state is field 3, utime and stime 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
    const ticks = (fields[14 - 3] ?? NaN) + (fields[15 - 3] ?? NaN);
    return { rssMiB: round(Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN) / 1024), cpuMs: (ticks * 1000) / CLOCK_TICKS };
  } catch {
    return undefined;
  }
}

/**
 * A child process's JSON log lines: how many of each message, those at warn and above apart with
 * their first line each (podvault's logs never hold a value or a token), and the last few lines,
 * for a failure's report.
 */
class ChildLog {
  readonly counts = new Map<string, number>();
  readonly warnings = new Map<string, { count: number; first: string }>();
  readonly tail: string[] = [];
  private buffered = '';

  constructor(child: ChildProcess) {
    const feed = (chunk: Buffer): void => {
      this.buffered += chunk.toString();
      const lines = this.buffered.split('\n');
      this.buffered = lines.pop() ?? '';
      for (const line of lines) this.line(line);
    };
    child.stdout?.on('data', feed);
    child.stderr?.on('data', feed);
  }

  private line(text: string): void {
    let msg = text;
    let level = 50;
    try {
      const line = JSON.parse(text) as { msg?: unknown; level?: unknown };
      msg = String(line.msg ?? text);
      level = typeof line.level === 'number' ? line.level : 30;
    } catch {
      // not JSON (a crash's stack): counted as an error, as it is
    }
    this.counts.set(msg, (this.counts.get(msg) ?? 0) + 1);
    if (level >= 40) {
      const w = this.warnings.get(msg) ?? { count: 0, first: text.slice(0, 600) };
      w.count += 1;
      this.warnings.set(msg, w);
    }
    this.tail.push(text);
    if (this.tail.length > 20) this.tail.shift();
  }

  count(msg: string): number {
    return this.counts.get(msg) ?? 0;
  }
}

/** A process this bench started, stopped by its own pid only. */
async function stopChild(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

interface Driver {
  index: number;
  child: ChildProcess;
  client: CsiClient;
  log: ChildLog;
  kubeletDir: string;
  volumes: EphemeralVolume[];
}

/** What is running, so that cleanup finds it whatever failed. */
interface Running {
  drivers: Driver[];
  watcher?: { child: ChildProcess; log: ChildLog };
}

interface Shared {
  vault: DevVault;
  api: KubeApiDouble;
  kubeconfig: string;
  caFile: string;
  work: string;
}

/** A driver process, in `running` from its spawn on (so cleanup stops one that never got ready), returned once it probes ready. */
async function startDriver(shared: Shared, running: Running, runDir: string, index: number, versionWatch: boolean): Promise<Driver> {
  const dir = join(runDir, `node-${index}`);
  const kubeletDir = join(dir, 'kubelet');
  await mkdir(kubeletDir, { recursive: true });
  const endpoint = `unix://${join(dir, 'csi.sock')}`;
  const nodeId = `node-${index}`;
  const child = spawn(
    process.execPath,
    [BIN, 'driver', '--endpoint', endpoint, '--kubeconfig', shared.kubeconfig, '--node-id', nodeId, '--kubelet-dir', kubeletDir, '--ca-file', shared.caFile, '--authority-host', shared.vault.url, '--allow-vault-uri', shared.vault.url,
      // info: one line per rotation, which is how its rotations are counted.
      '--rotation-interval', INTERVAL, '--log-level', 'info', ...(versionWatch ? ['--version-watch', '--version-watch-namespace', NAMESPACE] : [])],
    // The DaemonSet's V8 and malloc settings (DRIVER_NODE_OPTIONS says why), so RSS is the DaemonSet's.
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_NAME: nodeId, NODE_OPTIONS: DRIVER_NODE_OPTIONS, MALLOC_ARENA_MAX: DRIVER_MALLOC_ARENA_MAX } },
  );
  const driver: Driver = { index, child, client: new CsiClient(endpoint), log: new ChildLog(child), kubeletDir, volumes: [] };
  running.drivers.push(driver);
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`driver ${nodeId} exited ${child.exitCode}:\n${driver.log.tail.join('\n')}`);
    try {
      if ((await driver.client.probe()).ready?.value) return driver;
    } catch (err) {
      if (i > 300) throw err;
    }
    await sleep(100);
  }
}

/** `podvault version-watch` as a Key Vault Reader (the identity in its environment, never argv), in `running` from its spawn on, until it says it started. */
async function startWatcher(shared: Shared, running: Running): Promise<void> {
  const env: NodeJS.ProcessEnv = { ...process.env, AZURE_TENANT_ID: shared.vault.tenantId, AZURE_CLIENT_ID: WATCHER_CLIENT.clientId, AZURE_CLIENT_SECRET: WATCHER_CLIENT.clientSecret };
  for (const name of ['AZURE_FEDERATED_TOKEN_FILE', 'POD_NAME', 'POD_NAMESPACE']) delete env[name];
  const child = spawn(
    process.execPath,
    [BIN, 'version-watch', '--kubeconfig', shared.kubeconfig, '--namespace', NAMESPACE, '--ca-file', shared.caFile, '--authority-host', shared.vault.url, '--allow-vault-uri', shared.vault.url,
      '--interval', INTERVAL, '--lease-duration', '6s', '--renew-deadline', '4s', '--retry-period', '500ms', '--log-level', 'info'],
    { stdio: ['ignore', 'pipe', 'pipe'], env },
  );
  const log = new ChildLog(child);
  running.watcher = { child, log };
  for (let i = 0; log.count('podvault version-watch started') === 0; i++) {
    if (child.exitCode !== null || i > 300) throw new Error(`version-watch did not start:\n${log.tail.join('\n')}`);
    await sleep(100);
  }
}

/** The published versions of dev-vault's secrets, once every one of the K objects is in them. */
function publishedSecrets(shared: Shared): Record<string, string> | undefined {
  const object = shared.api.get(VOV_PLURAL, VOV_API_VERSION, NAMESPACE, versionsObjectName(shared.vault.url)) as { status?: unknown } | undefined;
  const parsed = versionsStatusSchema.safeParse(object?.status);
  if (!parsed.success) return undefined;
  const secrets = Object.fromEntries(Object.entries(parsed.data.versions.secrets).map(([name, e]) => [name, e.version]));
  return Array.from({ length: OBJECTS }, (_, i) => objectName(i)).every((n) => secrets[n] === shared.vault.store.get('secrets', n)?.version) ? secrets : undefined;
}

async function until(what: string, probe: () => boolean, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** One pod's volume on a node, as the kubelet publishes it: pod j uses class j mod CLASSES. */
async function publishPod(driver: Driver, pod: number): Promise<void> {
  const uid = `00000000-0000-4000-8000-${String(driver.index * 10_000 + pod).padStart(12, '0')}`;
  const v = ephemeralVolume({
    kubeletDir: driver.kubeletDir,
    pod: { namespace: 'default', name: `node-${driver.index}-pod-${pod}`, uid, serviceAccount: 'default' },
    volumeName: 'secrets',
    className: className(pod % CLASSES),
    secrets: { clientid: APP_CLIENT.clientId, clientsecret: APP_CLIENT.clientSecret },
  });
  await mkdir(join(v.targetPath, '..'), { recursive: true, mode: 0o750 });
  driver.volumes.push(v); // before the call: a publish that failed half-way is unpublished too
  await driver.client.publish(v.request);
}

/** Unpublish every volume (their tmpfs mounts go), stop the drivers and the watcher. Never throws. */
async function stopRun(running: Running): Promise<void> {
  const volumes = running.drivers.flatMap((d) => d.volumes.map((v) => ({ d, v })));
  await mapLimit(volumes, PUBLISHES_AT_ONCE, async ({ d, v }) => {
    if (d.child.exitCode === null) await d.client.unpublish({ volumeId: v.volumeId, targetPath: v.targetPath }, 30_000).catch((err: unknown) => process.stderr.write(`unpublish on node-${d.index} failed: ${(err as Error).message}\n`));
  });
  for (const d of running.drivers) d.volumes = [];
  await Promise.all(running.drivers.map(async (d) => {
    d.client.close();
    await stopChild(d.child);
  }));
  if (running.watcher) await stopChild(running.watcher.child);
  running.drivers = [];
  delete running.watcher;
}

interface Window {
  changed: string;
  valueGets: number;
  /** Value GETs of objects other than those changed in this run: the watch should make them 0. */
  unchangedObjectGets: number;
  metadataReads: number;
  tokenRequests: number;
}

interface RunResult {
  nodes: number;
  pods: number;
  objects: number;
  versionWatch: boolean;
  windows: Window[];
  medianValueGets: number;
  meanValueGets: number;
  medianMetadataReads: number;
  meanMetadataReads: number;
  meanTokenRequests: number;
  /** Value GETs per mounted object (N × M × CLASS_OBJECTS) and interval: 1 if every mounted object were read once per interval. */
  getsPerMountedObjectPerInterval: number;
  /**
   * Without the watch: how often each volume was in fact rotated (the measured time over the
   * rotations per volume). The drivers' timer ticks every interval/2 (≤ 30 s) and a volume fetched just after
   * a tick is not yet stale one interval later, so it rotates a tick late: 1.5 × the interval.
   */
  effectivePeriodS?: number;
  /**
   * Without the watch: value GETs of one rotation of all volumes (GETs over rotations, times N × M), against
   * N × M × CLASS_OBJECTS: below it when volumes of one class on a node rotate at the same time
   * and share their fetches (the provider's SingleFlight, same identity and object).
   */
  getsPerRotation?: number;
  /** With the watch: value GETs per node per changed object. */
  getsPerNodePerChange?: number;
  unchangedObjectGets: number;
  driverRssMiB: { median: number; max: number };
  /** Each driver's CPU time over the measured windows, per interval. */
  driverCpuMsPerInterval: { median: number; max: number };
  watcherRssMiB?: number;
  watcherCpuMsPerInterval?: number;
  rotationFailures: number;
  /** The drivers' log lines at warn and above during the measured intervals, by message, summed over the nodes, with one example. */
  driverWarnings: Record<string, { count: number; first: string }>;
  /** The watcher's, likewise, and its completed polls during the measured intervals. */
  watcherWarnings?: Record<string, { count: number; first: string }>;
  watcherPolls?: number;
  /** Volume rotations during the measured intervals (the drivers' `rotation check` and `rotated` lines). */
  rotations: number;
  /** When (s after the first window began) each burst of value GETs began, and its size: when the volumes rotated. */
  getBursts: Array<{ atS: number; gets: number }>;
  /** Vault requests the drivers retried (`vault request failed; retrying` lines, e.g. a reused keep-alive socket the server had closed). */
  vaultRetries: number;
  /** CPU of this process (dev-vault, the API double, the kubelet's part) per interval: it must not be the bottleneck. */
  benchCpuMsPerInterval: number;
  setupSeconds: number;
}

let changeSeq = 0;

async function runCase(shared: Shared, running: Running, nodes: number, versionWatch: boolean): Promise<RunResult> {
  const setupStarted = Date.now();
  const runDir = await mkdtemp(join(shared.work, `n${nodes}-${versionWatch ? 'watch' : 'plain'}-`));
  // A previous run's published versions would be stale by now; start from none.
  shared.api.delete(VOV_PLURAL, VOV_API_VERSION, NAMESPACE, versionsObjectName(shared.vault.url));
  if (versionWatch) {
    await startWatcher(shared, running);
    await until('the watcher to publish every object\'s version', () => publishedSecrets(shared) !== undefined, 60_000);
  }
  await mapLimit(Array.from({ length: nodes }, (_, i) => i), STARTS_AT_ONCE, (i) => startDriver(shared, running, runDir, i, versionWatch));
  running.drivers.sort((a, b) => a.index - b.index);
  const pods = running.drivers.flatMap((d) => Array.from({ length: PODS }, (_, j) => ({ d, j })));
  await mapLimit(pods, PUBLISHES_AT_ONCE, ({ d, j }) => publishPod(d, j));
  // One interval to settle: the publishes' own fetches are not rotation.
  await sleep(INTERVAL_MS);
  const setupSeconds = round((Date.now() - setupStarted) / 1000);

  const pids = running.drivers.map((d) => d.child.pid!);
  const cpuStart = await Promise.all(pids.map(sample));
  const watcherStart = running.watcher ? await sample(running.watcher.child.pid!) : undefined;
  const rssMax = new Array<number>(pids.length).fill(0);
  const changedNames = new Set<string>();
  const bounds: number[] = [];
  const tokenCounts: number[] = [];
  const logCount = (msg: string): number => running.drivers.reduce((n, d) => n + d.log.count(msg), 0);
  const failuresBefore = logCount(ROTATION_FAILED);
  const rotationsBefore = logCount(ROTATION_UNCHANGED) + logCount(ROTATION_SWAPPED);
  const warningsBefore = (log: ChildLog): Map<string, number> => new Map([...log.warnings].map(([m, w]) => [m, w.count]));
  const driverWarningsBefore = running.drivers.map((d) => warningsBefore(d.log));
  const watcherWarningsBefore = running.watcher ? warningsBefore(running.watcher.log) : undefined;
  const pollsBefore = running.watcher?.log.count('version poll complete') ?? 0;
  const retriesBefore = logCount(VAULT_RETRY);
  const benchCpuStart = process.cpuUsage();
  const t0 = Date.now();
  for (let w = 0; w < INTERVALS; w++) {
    const at = t0 + w * INTERVAL_MS;
    await sleep(Math.max(0, at - Date.now()));
    bounds.push(Date.now());
    tokenCounts.push(shared.vault.requests.token ?? 0);
    const name = objectName(changeSeq++ % OBJECTS);
    changedNames.add(name);
    shared.vault.store.setSecret(name, `rotated-${changeSeq}-${'x'.repeat(32)}`);
    const samples = await Promise.all(pids.map(sample));
    samples.forEach((s, i) => {
      if (s) rssMax[i] = Math.max(rssMax[i]!, s.rssMiB);
    });
    for (const d of running.drivers) if (d.child.exitCode !== null) throw new Error(`driver node-${d.index} exited ${d.child.exitCode}:\n${d.log.tail.join('\n')}`);
  }
  await sleep(Math.max(0, t0 + INTERVALS * INTERVAL_MS - Date.now()));
  bounds.push(Date.now());
  tokenCounts.push(shared.vault.requests.token ?? 0);
  const cpuEnd = await Promise.all(pids.map(sample));
  const watcherEnd = running.watcher ? await sample(running.watcher.child.pid!) : undefined;
  const rotationFailures = logCount(ROTATION_FAILED) - failuresBefore;
  const vaultRetries = logCount(VAULT_RETRY) - retriesBefore;
  const benchCpu = process.cpuUsage(benchCpuStart);
  const rotations = logCount(ROTATION_UNCHANGED) + logCount(ROTATION_SWAPPED) - rotationsBefore;
  const warningsSince = (log: ChildLog, before: Map<string, number>, into: Record<string, { count: number; first: string }>): void => {
    for (const [msg, w] of log.warnings) {
      const n = w.count - (before.get(msg) ?? 0);
      if (n > 0) into[msg] = { count: (into[msg]?.count ?? 0) + n, first: into[msg]?.first ?? w.first };
    }
  };
  const driverWarnings: Record<string, { count: number; first: string }> = {};
  running.drivers.forEach((d, i) => warningsSince(d.log, driverWarningsBefore[i]!, driverWarnings));
  const watcherWarnings: Record<string, { count: number; first: string }> = {};
  if (running.watcher && watcherWarningsBefore) warningsSince(running.watcher.log, watcherWarningsBefore, watcherWarnings);
  const watcherPolls = (running.watcher?.log.count('version poll complete') ?? 0) - pollsBefore;
  const getBursts: Array<{ atS: number; gets: number }> = [];
  let last = -Infinity;
  for (const r of shared.vault.vaultLog) {
    if (r.at < bounds[0]! || r.at >= bounds[INTERVALS]! || r.clientId !== APP_CLIENT.clientId) continue;
    if (r.at - last > 500) getBursts.push({ atS: round((r.at - bounds[0]!) / 1000), gets: 0 });
    getBursts[getBursts.length - 1]!.gets += 1;
    last = r.at;
  }

  const changedOrder = [...changedNames];
  const windows: Window[] = [];
  for (let w = 0; w < INTERVALS; w++) {
    const inWindow = shared.vault.vaultLog.filter((r) => r.at >= bounds[w]! && r.at < bounds[w + 1]!);
    const gets = inWindow.filter((r) => r.clientId === APP_CLIENT.clientId && /^\/secrets\/[^/]+\/[^/]*$/.test(r.path));
    windows.push({
      changed: changedOrder[w] ?? '',
      valueGets: gets.length,
      unchangedObjectGets: gets.filter((r) => !changedNames.has(r.path.split('/')[2] ?? '')).length,
      metadataReads: inWindow.filter((r) => r.clientId === WATCHER_CLIENT.clientId).length,
      tokenRequests: tokenCounts[w + 1]! - tokenCounts[w]!,
    });
  }
  const cpuPerInterval = cpuEnd.map((e, i) => (e && cpuStart[i] ? (e.cpuMs - cpuStart[i].cpuMs) / INTERVALS : NaN));
  const values = windows.map((w) => w.valueGets);
  const perMounted = values.reduce((a, b) => a + b, 0) / INTERVALS / (nodes * PODS * CLASS_OBJECTS);
  const result: RunResult = {
    nodes,
    pods: PODS,
    objects: OBJECTS,
    versionWatch,
    windows,
    medianValueGets: median(values),
    meanValueGets: mean(values),
    medianMetadataReads: median(windows.map((w) => w.metadataReads)),
    meanMetadataReads: mean(windows.map((w) => w.metadataReads)),
    meanTokenRequests: mean(windows.map((w) => w.tokenRequests)),
    getsPerMountedObjectPerInterval: Math.round(perMounted * 1000) / 1000,
    ...(versionWatch ? { getsPerNodePerChange: round(mean(values) / nodes) } : { effectivePeriodS: round((INTERVALS * INTERVAL_MS) / 1000 / (rotations / (nodes * PODS))), getsPerRotation: round((values.reduce((a, b) => a + b, 0) / rotations) * nodes * PODS) }),
    unchangedObjectGets: windows.reduce((n, w) => n + w.unchangedObjectGets, 0),
    driverRssMiB: { median: median(rssMax), max: round(Math.max(...rssMax)) },
    driverCpuMsPerInterval: { median: median(cpuPerInterval), max: round(Math.max(...cpuPerInterval)) },
    ...(watcherStart && watcherEnd ? { watcherRssMiB: watcherEnd.rssMiB, watcherCpuMsPerInterval: round((watcherEnd.cpuMs - watcherStart.cpuMs) / INTERVALS) } : {}),
    rotationFailures,
    driverWarnings,
    ...(running.watcher ? { watcherWarnings, watcherPolls } : {}),
    rotations,
    getBursts,
    vaultRetries,
    benchCpuMsPerInterval: round((benchCpu.user + benchCpu.system) / 1000 / INTERVALS),
    setupSeconds,
  };
  await stopRun(running);
  await rm(runDir, { recursive: true, force: true });
  return result;
}

/** The tmpfs mounts a failed run may have left under the work directory, newest first. */
async function unmountLeftovers(work: string): Promise<void> {
  const run = promisify(execFile);
  for (const m of (await readMountInfo()).filter((e) => e.mountPoint.startsWith(`${work}/`)).reverse()) {
    process.stderr.write(`unmounting a left-over ${m.mountPoint}\n`);
    await run('umount', [m.mountPoint]).catch(() => undefined);
  }
}

function table(results: readonly RunResult[]): string[] {
  const lines = [`per interval of ${INTERVAL}: median over ${INTERVALS} intervals (mean in brackets); one object given a new version per interval`, ''];
  const head = ['N', 'M', 'K', 'changed', 'w/o per rotation (N×M×5)', 'value GETs without', 'value GETs with', 'with, per node', 'metadata reads with', 'tokens w/o|with', 'driver RSS MiB w/o|with (max)', 'driver CPU ms/interval w/o|with'];
  const rows: string[][] = [head];
  for (const n of [...new Set(results.map((r) => r.nodes))]) {
    const without = results.find((r) => r.nodes === n && !r.versionWatch);
    const withWatch = results.find((r) => r.nodes === n && r.versionWatch);
    const cell = (r: RunResult | undefined, get: (r: RunResult) => string | number): string => (r ? String(get(r)) : '-');
    rows.push([
      String(n),
      String(PODS),
      String(OBJECTS),
      '1',
      cell(without, (r) => `${r.getsPerRotation} (${n * PODS * CLASS_OBJECTS})`),
      cell(without, (r) => `${r.medianValueGets} (${r.meanValueGets})`),
      cell(withWatch, (r) => `${r.medianValueGets} (${r.meanValueGets})`),
      cell(withWatch, (r) => r.getsPerNodePerChange ?? '-'),
      cell(withWatch, (r) => `${r.medianMetadataReads} (${r.meanMetadataReads})`),
      `${cell(without, (r) => r.meanTokenRequests)}|${cell(withWatch, (r) => r.meanTokenRequests)}`,
      `${cell(without, (r) => `${r.driverRssMiB.median} (${r.driverRssMiB.max})`)}|${cell(withWatch, (r) => `${r.driverRssMiB.median} (${r.driverRssMiB.max})`)}`,
      `${cell(without, (r) => r.driverCpuMsPerInterval.median)}|${cell(withWatch, (r) => r.driverCpuMsPerInterval.median)}`,
    ]);
  }
  const widths = head.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  lines.push(...rows.map((r) => r.map((cell, c) => cell.padStart(widths[c]!)).join('  ')));
  lines.push(
    '',
    `Without the watch every mounted object is read at each rotation of its volume (at most N × M × ${CLASS_OBJECTS}; less where volumes of one class on a node rotate together and share fetches);`,
    `the drivers' timer rotated a volume every ${results.filter((r) => !r.versionWatch).map((r) => `${r.effectivePeriodS} s (N=${r.nodes})`).join(', ')}: 1.5 × ${INTERVAL} = ${(1.5 * INTERVAL_MS) / 1000} s when the drivers keep up (a volume is a hair short of stale at the tick one interval after it was fetched), longer when they do not.`,
    `With it: value GETs of objects that did not change, over all runs: ${results.filter((r) => r.versionWatch).reduce((n, r) => n + r.unchangedObjectGets, 0)}; rotation failures: ${results.reduce((n, r) => n + r.rotationFailures, 0)}; vault requests retried: ${results.reduce((n, r) => n + r.vaultRetries, 0)}; this process's CPU per interval at most ${Math.max(...results.map((r) => r.benchCpuMsPerInterval))} ms.`,
  );
  return lines;
}

async function main(): Promise<void> {
  const seed = parseSeed(
    stringify({
      clients: [
        { ...APP_CLIENT, read: ['*'] },
        { ...WATCHER_CLIENT, keyVaultReader: true, read: [] },
      ],
      secrets: Array.from({ length: OBJECTS }, (_, i) => ({ name: objectName(i), value: `value-${i}-${'x'.repeat(64)}` })),
    }),
    'scale bench seed',
  );
  const running: Running = { drivers: [] };
  const work = await mkdtemp('/dev/shm/podvault-bench-scale-');
  let vault: DevVault | undefined;
  let api: KubeApiDouble | undefined;
  let cleaning: Promise<void> | undefined;
  const cleanup = (): Promise<void> =>
    (cleaning ??= (async () => {
      await stopRun(running);
      await unmountLeftovers(work);
      await api?.close();
      await vault?.close();
      await rm(work, { recursive: true, force: true });
    })());
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      process.stderr.write(`${signal}: cleaning up\n`);
      void cleanup().finally(() => process.exit(130));
    });
  }
  const results: RunResult[] = [];
  const skipped: string[] = [];
  try {
    vault = await startDevVault({ seed });
    api = await new KubeApiDouble().start();
    const caFile = join(work, 'ca.pem');
    await writeFile(caFile, vault.caPem);
    for (let c = 0; c < CLASSES; c++) {
      const names = Array.from({ length: CLASS_OBJECTS }, (_, i) => c * CLASS_OBJECTS + i).filter((i) => i < OBJECTS).map(objectName);
      api.put('secretproviderclasses', {
        apiVersion: 'secrets-store.csi.x-k8s.io/v1',
        kind: 'SecretProviderClass',
        metadata: { name: className(c), namespace: 'default' },
        spec: { provider: 'azure', parameters: { vaultUri: vault.url, tenantId: vault.tenantId, objects: stringify({ array: names.map((objectName) => stringify({ objectName, objectType: 'secret' })) }) } },
      });
    }
    const shared: Shared = { vault, api, kubeconfig: await api.writeKubeconfig(), caFile, work };
    for (const nodes of NODE_COUNTS) {
      const freeMiB = freemem() / 1024 / 1024;
      if (nodes * DRIVER_BUDGET_MIB > freeMiB * 0.8) {
        skipped.push(`N=${nodes}: ${nodes} drivers × ${DRIVER_BUDGET_MIB} MiB would not fit in 80% of the ${Math.round(freeMiB)} MiB free`);
        continue;
      }
      for (const versionWatch of [false, true]) {
        const r = await runCase(shared, running, nodes, versionWatch);
        results.push(r);
        process.stderr.write(`N=${nodes} ${versionWatch ? 'with' : 'without'} the watch: value GETs per interval median ${r.medianValueGets} (mean ${r.meanValueGets}), metadata reads ${r.medianMetadataReads}, setup ${r.setupSeconds} s, rotation failures ${r.rotationFailures}\n`);
      }
    }
  } finally {
    await cleanup();
  }

  // 1,000 nodes × 30 volume pods × 5 objects at 2 minutes, from what was measured here.
  const cluster = { nodes: 1000, podsPerNode: 30, objectsPerPod: 5, interval: '2m' };
  // Only runs where the watcher kept up (K metadata reads in the median interval): past the
  // machine's capacity its Lease lapses, the versions go stale and drivers fall back by design,
  // which measures the fallback, not the watch.
  const largest = [...results].filter((r) => r.versionWatch && r.medianMetadataReads === OBJECTS).sort((a, b) => b.nodes - a.nodes)[0];
  const perNodePerChange = largest?.getsPerNodePerChange ?? NaN;
  // The cluster's distinct objects: what its classes name, e.g. 300 classes of 5 objects (pods of
  // one Deployment share a class); and how many of them get a new version in one interval.
  const distinctObjects = Number(process.env.BENCH_CLUSTER_OBJECTS ?? 1500);
  const changedPerInterval = Number(process.env.BENCH_CLUSTER_CHANGES ?? 1);
  const withValueGets = Math.round(changedPerInterval * cluster.nodes * perNodePerChange);
  const extrapolation = {
    ...cluster,
    withoutValueGetsPerInterval: cluster.nodes * cluster.podsPerNode * cluster.objectsPerPod,
    assumedDistinctObjects: distinctObjects,
    assumedChangedObjectsPerInterval: changedPerInterval,
    measuredGetsPerNodePerChange: perNodePerChange,
    withMetadataReadsPerInterval: distinctObjects,
    /** Every node that mounts a changed object reads it (as its pods), once: at most every node. */
    withValueGetsPerIntervalAtMost: withValueGets,
    /** The watcher's default --max-requests-per-second (20): the metadata reads take this long per interval. */
    watcherSecondsPerPollAtDefaultRate: distinctObjects / 20,
  };
  const lines = table(results);
  lines.push(
    ...skipped,
    '',
    `1,000 nodes × 30 pods × 5 objects at 2m: without the watch ${extrapolation.withoutValueGetsPerInterval.toLocaleString('en')} value GETs per interval.`,
    `With it, assuming K = ${distinctObjects.toLocaleString('en')} distinct objects in the cluster's classes and ${changedPerInterval} changed per interval: ${distinctObjects.toLocaleString('en')} metadata reads (${extrapolation.watcherSecondsPerPollAtDefaultRate} s of the 120 s at the watcher's default 20 requests/s)`,
    `+ ${changedPerInterval} × (nodes mounting the object, ≤ 1,000) × ${perNodePerChange} value GETs per node and change (measured at N=${largest?.nodes ?? '-'}) ≤ ${withValueGets.toLocaleString('en')}: at most ${(withValueGets + distinctObjects).toLocaleString('en')} requests per interval.`,
  );
  process.stdout.write(`${lines.join('\n')}\n`);
  await writeFile(
    OUTPUT,
    `${JSON.stringify({ date: new Date().toISOString(), node: process.version, interval: INTERVAL, intervals: INTERVALS, pods: PODS, objects: OBJECTS, classObjects: CLASS_OBJECTS, classes: CLASSES, processPerNode: true, skipped, results, extrapolation }, null, 2)}\n`,
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
