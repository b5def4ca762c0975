/**
 * `npm run bench:render`: render throughput of a 10,000-line file holding 1,000 `{{pv:…}}`
 * markers sealed in one run (one data key), against dev-vault over HTTPS through the real
 * @azure/keyvault-keys SDK with BENCH_LATENCY_MS (20) added to every vault answer.
 *
 * Each of BENCH_RUNS (7) runs builds a fresh KeyVaultDataKeys (new SDK clients, a cached token
 * after the first run) and renders the file; it reports the vault unwrapKey calls the run made
 * (the goal is 1, and the bench fails otherwise), its wall time and its CPU time. The CPU time of
 * this process includes dev-vault's own (one RSA decryption per unwrap), so the local cost is also
 * measured alone: the same render with the data key already unwrapped (an in-memory unwrapper),
 * which is the parsing, AES-GCM and splicing podvault does per file. Medians of the runs.
 */
import { randomBytes } from 'node:crypto';
import { ClientSecretCredential } from '@azure/identity';
import { startDevVault } from '../src/devvault/server.js';
import { parseSeed } from '../src/devvault/seed.js';
import { createLogger } from '../src/log.js';
import { AZURE_CLOUDS } from '../src/providers/azure/clouds.js';
import { findMarkers, KeyVaultDataKeys, renderText, sealValues } from '../src/sealed/index.js';
import type { DataKeyUnwrapper } from '../src/sealed/index.js';

const LATENCY_MS = Number(process.env.BENCH_LATENCY_MS ?? 20);
const RUNS = Number(process.env.BENCH_RUNS ?? 7);
const LINES = 10_000;
const MARKERS = 1_000;
const SECRET = 'bench-render-secret-never-logged';

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? (s[(s.length - 1) / 2] as number) : ((s[s.length / 2 - 1] as number) + (s[s.length / 2] as number)) / 2;
};
const cpuMs = (start: NodeJS.CpuUsage): number => {
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000;
};

async function main(): Promise<void> {
  const vault = await startDevVault({
    seed: parseSeed(`clients:\n  - clientId: bench\n    clientSecret: ${SECRET}\n    read: []\n    crypto: [{ role: crypto-service-encryption-user, keys: ["cfg"] }]\nkeys:\n  - name: cfg\n`, 'bench seed'),
    latencyMs: LATENCY_MS,
  });
  try {
    const credential = new ClientSecretCredential(vault.tenantId, 'bench', SECRET, { authorityHost: vault.url, disableInstanceDiscovery: true, tlsOptions: { ca: vault.caPem } });
    const dataKeys = (): KeyVaultDataKeys =>
      new KeyVaultDataKeys({
        credential,
        settings: { caPem: vault.caPem, authorityHost: vault.url, allowedVaultOrigins: [vault.url], maxRetries: 0 },
        cloud: AZURE_CLOUDS[0]!,
        allowedOrigins: [vault.url],
        log: createLogger({ level: 'warn', destination: { write: (line: string) => void process.stderr.write(line) } }),
      });

    const values = Array.from({ length: MARKERS }, (_, i) => `value-${i}-${randomBytes(12).toString('base64url')}`);
    const { markers } = await sealValues(values, `${vault.url}/keys/cfg`, dataKeys());
    const lines = Array.from({ length: LINES }, (_, i) => (i % (LINES / MARKERS) === 0 ? `  key_${i}: "${markers[i / (LINES / MARKERS)]}"  # sealed` : `  setting_${i}: plain value number ${i} with some text`));
    const text = `${lines.join('\n')}\n`;
    const expected = `${lines.map((l, i) => (i % (LINES / MARKERS) === 0 ? `  key_${i}: "${values[i / (LINES / MARKERS)]}"  # sealed` : l)).join('\n')}\n`;
    const bytes = Buffer.byteLength(text);

    const unwraps = (): number => vault.vaultLog.filter((r) => r.path.endsWith('/unwrapkey')).length;
    const vaultRuns: Array<{ wallMs: number; cpuMs: number; unwraps: number }> = [];
    for (let run = 0; run < RUNS; run++) {
      const before = unwraps();
      const cpu = process.cpuUsage();
      const started = performance.now();
      const out = await renderText(text, { unwrapper: dataKeys() });
      const wallMs = performance.now() - started;
      vaultRuns.push({ wallMs, cpuMs: cpuMs(cpu), unwraps: unwraps() - before });
      if (out !== expected) throw new Error('render output differs from the sealed values');
    }

    // The local cost alone: the data key unwrapped once up front, handed back from memory.
    const marker = findMarkers(markers[0] as string)[0]!;
    const dataKey = await dataKeys().unwrap(marker.keyId, 'RSA-OAEP-256', marker.wrappedKey);
    const inMemory: DataKeyUnwrapper = { unwrap: async () => Buffer.from(dataKey) };
    const localRuns: Array<{ wallMs: number; cpuMs: number }> = [];
    for (let run = 0; run < RUNS; run++) {
      const cpu = process.cpuUsage();
      const started = performance.now();
      await renderText(text, { unwrapper: inMemory });
      localRuns.push({ wallMs: performance.now() - started, cpuMs: cpuMs(cpu) });
    }
    dataKey.fill(0);

    const result = {
      file: { lines: LINES, markers: MARKERS, bytes },
      vaultLatencyMs: LATENCY_MS,
      runs: RUNS,
      withVault: {
        unwrapCallsPerRender: vaultRuns.map((r) => r.unwraps),
        medianWallMs: Number(median(vaultRuns.map((r) => r.wallMs)).toFixed(1)),
        medianCpuMs: Number(median(vaultRuns.map((r) => r.cpuMs)).toFixed(1)),
      },
      localOnly: {
        medianWallMs: Number(median(localRuns.map((r) => r.wallMs)).toFixed(1)),
        medianCpuMs: Number(median(localRuns.map((r) => r.cpuMs)).toFixed(1)),
        markersPerSecond: Math.round(MARKERS / (median(localRuns.map((r) => r.wallMs)) / 1000)),
        mibPerSecond: Number((bytes / 1048576 / (median(localRuns.map((r) => r.wallMs)) / 1000)).toFixed(1)),
      },
    };
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    if (vaultRuns.some((r) => r.unwraps !== 1)) {
      process.stderr.write(`bench:render: expected 1 unwrapKey call per render, saw ${vaultRuns.map((r) => r.unwraps).join(', ')}\n`);
      process.exitCode = 1;
    }
  } finally {
    await vault.close();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:render: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
