/**
 * `npm run bench:kms` (also the end of `npm run bench`): the KMS plugin's Encrypt and Decrypt
 * latency over its socket against dev-vault with 20 ms added to every answer, next to the same
 * wrapKey/unwrapKey called directly with the SDK (one vault round trip), and the vault requests an
 * idle plugin makes. The plugin runs as its own process through the CLI, as the static pod does.
 *
 * Plugin and SDK rounds are interleaved in one run (their order alternating round by round), so
 * both see the same load on the shared machine; the figure is the difference of the medians.
 * Around every plugin call the bench counts dev-vault's requests and new TLS connections (the
 * plugin must make exactly one request per Encrypt or Decrypt, none per Status, and reuse its
 * connection) and the plugin's CPU time from /proc/<pid>/stat (utime+stime, 10 ms ticks: the sum
 * over all rounds divided by the rounds, not a per-call figure).
 *
 * Idle requests are counted over BENCH_KMS_IDLE_S seconds (20) with a 2 s health interval while
 * Status is polled every 500 ms (kube-apiserver polls once a minute), then scaled to an hour at
 * the default interval (5 m). Options (env): BENCH_LATENCY_MS (20), BENCH_ROUNDS (100),
 * BENCH_KMS_NODE_ARGS (node flags for the plugin, e.g. `--cpu-prof`). The plugin logs at info, as
 * the static pod does (one line per call). Writes bench/kms-results.json.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClientSecretCredential } from '@azure/identity';
import { CryptographyClient } from '@azure/keyvault-keys';
import { startDevVault } from '../src/devvault/server.js';
import type { DevVault } from '../src/devvault/server.js';
import { parseSeed } from '../src/devvault/seed.js';
import { KmsClient } from '../src/kms/kms-client.js';
import { DEFAULT_HEALTH_INTERVAL } from '../src/kms/kms-config.js';
import { parseDuration } from '../src/config/driver-config.js';
import { packageRoot } from '../src/package-info.js';

const LATENCY_MS = Number(process.env.BENCH_LATENCY_MS ?? 20);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 100);
const IDLE_S = Number(process.env.BENCH_KMS_IDLE_S ?? 20);
const IDLE_INTERVAL_S = 2;
const NODE_ARGS = (process.env.BENCH_KMS_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
/** Clock ticks per second of /proc's utime and stime (USER_HZ, 100 on Linux). */
const USER_HZ = 100;

/** A process's CPU time (user + system) in ms, from /proc; undefined off Linux. */
async function cpuMs(pid: number | undefined): Promise<number | undefined> {
  if (pid === undefined) return undefined;
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start at the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / USER_HZ;
  } catch {
    return undefined;
  }
}

const median = (samples: number[]): number => {
  const sorted = [...samples].sort((a, b) => a - b);
  return Math.round((sorted[Math.floor(sorted.length / 2)] ?? NaN) * 10) / 10;
};

async function timed<T>(samples: number[], work: () => Promise<T>): Promise<T> {
  const t0 = process.hrtime.bigint();
  const out = await work();
  samples.push(Number(process.hrtime.bigint() - t0) / 1e6);
  return out;
}

function startPlugin(args: string[]): Promise<{ child: ChildProcess; endpoint: string }> {
  const child = spawn(process.execPath, [...NODE_ARGS, join(packageRoot, 'bin', 'podvault.js'), 'kms-plugin', ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let buffered = '';
    // Read lines until the plugin serves, then only drain its log (one line per call): parsing an
    // ever-growing buffer would cost the bench CPU inside the timed calls.
    const onData = (chunk: Buffer): void => {
      buffered += chunk.toString();
      const line = buffered.split('\n').find((l) => l.includes('podvault kms-plugin serving'));
      if (!line) return;
      child.stdout?.off('data', onData);
      child.stdout?.resume();
      buffered = '';
      resolve({ child, endpoint: (JSON.parse(line) as { endpoint: string }).endpoint });
    };
    child.stdout?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`kms-plugin exited ${code}`)));
  });
}

async function stop(child: ChildProcess): Promise<void> {
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  await exited;
}

/** What one plugin call cost: wall time, dev-vault requests, new TLS connections and plugin CPU. */
class PluginOp {
  readonly wall: number[] = [];
  vaultRequests = 0;
  tlsConnections = 0;
  cpuMs = 0;
  cpuKnown = true;

  constructor(
    private readonly vault: DevVault,
    private readonly pid: number | undefined,
  ) {}

  async run<T>(work: () => Promise<T>): Promise<T> {
    const requests = this.vault.vaultLog.length;
    const tls = this.vault.requests['tls-connections'] ?? 0;
    const cpu = await cpuMs(this.pid);
    const out = await timed(this.wall, work);
    const cpuAfter = await cpuMs(this.pid);
    this.vaultRequests += this.vault.vaultLog.length - requests;
    this.tlsConnections += (this.vault.requests['tls-connections'] ?? 0) - tls;
    if (cpu === undefined || cpuAfter === undefined) this.cpuKnown = false;
    else this.cpuMs += cpuAfter - cpu;
    return out;
  }

  summary(rounds: number): { medianMs: number; vaultRequestsPerCall: number; newTlsConnections: number; pluginCpuMsPerCall: number | null } {
    return {
      medianMs: median(this.wall),
      vaultRequestsPerCall: Math.round((this.vaultRequests / rounds) * 100) / 100,
      newTlsConnections: this.tlsConnections,
      pluginCpuMsPerCall: this.cpuKnown ? Math.round((this.cpuMs / rounds) * 100) / 100 : null,
    };
  }
}

async function main(): Promise<void> {
  const seed = parseSeed(
    `
clients:
  - clientId: bench-kms
    clientSecret: bench-kms-secret
    crypto: [{ role: crypto-service-encryption-user, keys: ["etcd-kek"] }]
keys:
  - name: etcd-kek
`,
    'bench seed',
  );
  const vault = await startDevVault({ seed, latencyMs: LATENCY_MS });
  const work = await mkdtemp(join(tmpdir(), 'podvault-bench-kms-'));
  await writeFile(join(work, 'ca.pem'), vault.caPem);
  await writeFile(join(work, 'azure.json'), JSON.stringify({ tenantId: vault.tenantId, aadClientId: 'bench-kms', aadClientSecret: 'bench-kms-secret' }), { mode: 0o600 });
  const common = ['--key-id', `${vault.url}/keys/etcd-kek`, '--config-file-path', join(work, 'azure.json'), '--ca-file', join(work, 'ca.pem'), '--authority-host', vault.url, '--log-level', 'info'];
  try {
    // One vault round trip, measured with the SDK itself (warm: token and connection reused).
    const version = vault.store.get('keys', 'etcd-kek')!.version;
    const credential = new ClientSecretCredential(vault.tenantId, 'bench-kms', 'bench-kms-secret', { authorityHost: vault.url, disableInstanceDiscovery: true, tlsOptions: { ca: vault.caPem } });
    const sdk = new CryptographyClient(`${vault.url}/keys/etcd-kek/${version}`, credential, { tlsOptions: { ca: vault.caPem }, disableChallengeResourceVerification: true, retryOptions: { maxRetries: 0 } });
    await sdk.unwrapKey('RSA-OAEP-256', (await sdk.wrapKey('RSA-OAEP-256', randomBytes(32))).result);

    // The plugin on its socket, warmed the same way (token, connection, JIT).
    const plugin = await startPlugin(['--listen', `unix://${join(work, 'kms.sock')}`, ...common]);
    const kms = new KmsClient(plugin.endpoint);
    for (let i = 0; i < 5; i++) {
      const warm = await kms.encrypt(randomBytes(32));
      await kms.decrypt({ ciphertext: warm.ciphertext, keyId: warm.keyId, annotations: warm.annotations });
    }
    const sdkWrap: number[] = [];
    const sdkUnwrap: number[] = [];
    const encrypt = new PluginOp(vault, plugin.child.pid);
    const decrypt = new PluginOp(vault, plugin.child.pid);
    const status = new PluginOp(vault, plugin.child.pid);
    const sdkTls = { value: 0 };
    const sdkRound = async (): Promise<void> => {
      const tls = vault.requests['tls-connections'] ?? 0;
      const wrapped = await timed(sdkWrap, () => sdk.wrapKey('RSA-OAEP-256', randomBytes(32)));
      await timed(sdkUnwrap, () => sdk.unwrapKey('RSA-OAEP-256', wrapped.result));
      sdkTls.value += (vault.requests['tls-connections'] ?? 0) - tls;
    };
    const pluginRound = async (): Promise<void> => {
      const enc = await encrypt.run(() => kms.encrypt(randomBytes(32)));
      await decrypt.run(() => kms.decrypt({ ciphertext: enc.ciphertext, keyId: enc.keyId, annotations: enc.annotations }));
      await status.run(() => kms.status());
    };
    for (let i = 0; i < ROUNDS; i++) {
      if (i % 2 === 0) {
        await sdkRound();
        await pluginRound();
      } else {
        await pluginRound();
        await sdkRound();
      }
    }
    kms.close();
    await stop(plugin.child);

    // An idle plugin: vault requests per health round trip while Status is polled.
    const idle = await startPlugin(['--listen', `unix://${join(work, 'idle.sock')}`, '--health-interval', `${IDLE_INTERVAL_S}s`, ...common]);
    const idleClient = new KmsClient(idle.endpoint);
    const before = vault.vaultLog.length;
    let polls = 0;
    const end = Date.now() + IDLE_S * 1000;
    while (Date.now() < end) {
      await idleClient.status();
      polls += 1;
      await new Promise((r) => setTimeout(r, 500));
    }
    const idleRequests = vault.vaultLog.length - before;
    idleClient.close();
    await stop(idle.child);
    const perRoundTrip = idleRequests / (IDLE_S / IDLE_INTERVAL_S);
    const perHourDefault = Math.round(perRoundTrip * (3_600_000 / parseDuration(DEFAULT_HEALTH_INTERVAL)));

    const round1 = (n: number): number => Math.round(n * 10) / 10;
    const results = {
      date: new Date().toISOString(),
      node: process.version,
      vaultLatencyMs: LATENCY_MS,
      rounds: ROUNDS,
      interleaved: true,
      sdkWrapKeyMedianMs: median(sdkWrap),
      sdkUnwrapKeyMedianMs: median(sdkUnwrap),
      sdkNewTlsConnections: sdkTls.value,
      encrypt: encrypt.summary(ROUNDS),
      decrypt: decrypt.summary(ROUNDS),
      status: status.summary(ROUNDS),
      encryptOverheadMs: round1(median(encrypt.wall) - median(sdkWrap)),
      decryptOverheadMs: round1(median(decrypt.wall) - median(sdkUnwrap)),
      idle: { seconds: IDLE_S, healthIntervalS: IDLE_INTERVAL_S, statusPolls: polls, vaultRequests: idleRequests, vaultRequestsPerRoundTrip: round1(perRoundTrip), vaultRequestsPerHourAtDefaultInterval: perHourDefault, defaultInterval: DEFAULT_HEALTH_INTERVAL },
    };
    console.log(JSON.stringify(results, null, 2));
    await writeFile(join(packageRoot, 'bench', 'kms-results.json'), `${JSON.stringify(results, null, 2)}\n`);
  } finally {
    await vault.close();
    await rm(work, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
