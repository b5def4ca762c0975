/**
 * `npm run bench:kms` (also the end of `npm run bench`): the KMS plugin's Encrypt and Decrypt
 * latency over its socket against dev-vault with 20 ms added to every answer, next to the same
 * wrapKey/unwrapKey called directly with the SDK (one vault round trip), and the vault requests an
 * idle plugin makes. The plugin runs as its own process through the CLI, as the static pod does.
 *
 * Idle requests are counted over BENCH_KMS_IDLE_S seconds (20) with a 2 s health interval while
 * Status is polled every 500 ms (kube-apiserver polls once a minute), then scaled to an hour at
 * the default interval (5 m). The plugin's own CPU time per Encrypt+Decrypt+Status round is read
 * from /proc/<pid>/stat (utime+stime) around the timed loop: wall times on a shared machine are
 * noisy, CPU time says what the plugin itself costs. Options (env): BENCH_LATENCY_MS (20),
 * BENCH_ROUNDS (50), BENCH_KMS_NODE_ARGS (node flags for the plugin, e.g. `--cpu-prof`).
 * Writes bench/kms-results.json.
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
import { parseSeed } from '../src/devvault/seed.js';
import { KmsClient } from '../src/kms/kms-client.js';
import { DEFAULT_HEALTH_INTERVAL } from '../src/kms/kms-config.js';
import { parseDuration } from '../src/config/driver-config.js';
import { packageRoot } from '../src/package-info.js';

const LATENCY_MS = Number(process.env.BENCH_LATENCY_MS ?? 20);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 50);
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
    child.stdout?.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const line = buffered.split('\n').find((l) => l.includes('podvault kms-plugin serving'));
      if (line) resolve({ child, endpoint: (JSON.parse(line) as { endpoint: string }).endpoint });
    });
    child.once('exit', (code) => reject(new Error(`kms-plugin exited ${code}`)));
  });
}

async function stop(child: ChildProcess): Promise<void> {
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  await exited;
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
    // 1. One vault round trip, measured with the SDK itself (warm: token and connection reused).
    const version = vault.store.get('keys', 'etcd-kek')!.version;
    const credential = new ClientSecretCredential(vault.tenantId, 'bench-kms', 'bench-kms-secret', { authorityHost: vault.url, disableInstanceDiscovery: true, tlsOptions: { ca: vault.caPem } });
    const sdk = new CryptographyClient(`${vault.url}/keys/etcd-kek/${version}`, credential, { tlsOptions: { ca: vault.caPem }, disableChallengeResourceVerification: true, retryOptions: { maxRetries: 0 } });
    await sdk.unwrapKey('RSA-OAEP-256', (await sdk.wrapKey('RSA-OAEP-256', randomBytes(32))).result);
    const sdkWrap: number[] = [];
    const sdkUnwrap: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const wrapped = await timed(sdkWrap, () => sdk.wrapKey('RSA-OAEP-256', randomBytes(32)));
      await timed(sdkUnwrap, () => sdk.unwrapKey('RSA-OAEP-256', wrapped.result));
    }

    // 2. Through the plugin's socket.
    const plugin = await startPlugin(['--listen', `unix://${join(work, 'kms.sock')}`, ...common]);
    const kms = new KmsClient(plugin.endpoint);
    const warm = await kms.encrypt(randomBytes(32));
    await kms.decrypt({ ciphertext: warm.ciphertext, keyId: warm.keyId, annotations: warm.annotations });
    const encrypt: number[] = [];
    const decrypt: number[] = [];
    const status: number[] = [];
    const cpuBefore = await cpuMs(plugin.child.pid);
    for (let i = 0; i < ROUNDS; i++) {
      const enc = await timed(encrypt, () => kms.encrypt(randomBytes(32)));
      await timed(decrypt, () => kms.decrypt({ ciphertext: enc.ciphertext, keyId: enc.keyId, annotations: enc.annotations }));
      await timed(status, () => kms.status());
    }
    const cpuAfter = await cpuMs(plugin.child.pid);
    const pluginCpuMsPerRound = cpuBefore === undefined || cpuAfter === undefined ? undefined : Math.round(((cpuAfter - cpuBefore) / ROUNDS) * 100) / 100;
    kms.close();
    await stop(plugin.child);

    // 3. An idle plugin: vault requests per health round trip while Status is polled.
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

    const results = {
      date: new Date().toISOString(),
      vaultLatencyMs: LATENCY_MS,
      rounds: ROUNDS,
      sdkWrapKeyMedianMs: median(sdkWrap),
      sdkUnwrapKeyMedianMs: median(sdkUnwrap),
      encryptMedianMs: median(encrypt),
      decryptMedianMs: median(decrypt),
      encryptOverheadMs: Math.round((median(encrypt) - median(sdkWrap)) * 10) / 10,
      decryptOverheadMs: Math.round((median(decrypt) - median(sdkUnwrap)) * 10) / 10,
      statusMedianMs: median(status),
      pluginCpuMsPerRound,
      idle: { seconds: IDLE_S, healthIntervalS: IDLE_INTERVAL_S, statusPolls: polls, vaultRequests: idleRequests, vaultRequestsPerRoundTrip: Math.round(perRoundTrip * 10) / 10, vaultRequestsPerHourAtDefaultInterval: perHourDefault, defaultInterval: DEFAULT_HEALTH_INTERVAL },
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
