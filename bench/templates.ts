/**
 * `npm run bench:templates`: what `objectType: template` costs.
 *
 * 1. Publish latency against dev-vault with a per-request latency (BENCH_LATENCY_MS, default 20 ms)
 *    through a driver process started by the CLI (standalone mode), BENCH_ROUNDS (30) fresh pods
 *    per class: 10 plain secrets; the same 10 plus a template referring to all 10; the same plus
 *    10 sealed values under one data key. Goal: a template costs no vault round trip of its own
 *    (its references are the objects already fetched; its one unwrap runs beside them).
 * 2. The serving thread: parse + render of a maximum-size template (MAX_TEMPLATE_BYTES, with
 *    MAX_TEMPLATE_EXPRESSIONS expressions), and of as much text shaped against the scanner, in
 *    this process, median of BENCH_CPU_ROUNDS (20) runs each.
 *
 * Prints a table and writes bench/templates-results.json.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ClientSecretCredential } from '@azure/identity';
import { stringify } from 'yaml';
import { generateKeyVersion } from '../src/devvault/key-crypto.js';
import { parseSeed } from '../src/devvault/seed.js';
import { startDevVault } from '../src/devvault/server.js';
import type { DevVaultOptions } from '../src/devvault/server.js';
import { CsiClient } from '../src/driver/client.js';
import { ephemeralVolume } from '../src/driver/kubelet-volume.js';
import { createLogger } from '../src/log.js';
import { packageRoot } from '../src/package-info.js';
import { AZURE_CLOUDS } from '../src/providers/azure/clouds.js';
import { KeyVaultDataKeys, sealValues } from '../src/sealed/index.js';
import { renderTemplate } from '../src/templates/render-template.js';
import { MAX_TEMPLATE_BYTES, MAX_TEMPLATE_EXPRESSIONS, parseTemplate } from '../src/templates/template-syntax.js';

const LATENCY_MS = Number(process.env.BENCH_LATENCY_MS ?? 20);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 30);
const CPU_ROUNDS = Number(process.env.BENCH_CPU_ROUNDS ?? 20);
const N = 10;

const round = (n: number): number => Math.round(n * 100) / 100;
const median = (xs: number[]): number => round([...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN);
const p99 = (xs: number[]): number => round([...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * 0.99))] ?? NaN);

/** Serving-thread time of parse + render, median over CPU_ROUNDS. */
function serveThread(text: string): { parseMs: number; renderMs: number; expressions: number } {
  const parse: number[] = [];
  const render: number[] = [];
  let expressions = 0;
  for (let i = 0; i < CPU_ROUNDS; i++) {
    const t0 = performance.now();
    const parsed = parseTemplate(text, 'bench');
    const t1 = performance.now();
    renderTemplate(parsed, (e) => (e.kind === 'object' ? `value-of-${e.name}-"quoted"\n` : 'sealed'), 8 * 1024 * 1024, 'bench', '--max-object-size');
    const t2 = performance.now();
    parse.push(t1 - t0);
    render.push(t2 - t1);
    expressions = parsed.expressions.length;
  }
  return { parseMs: median(parse), renderMs: median(render), expressions };
}

/** Text of about MAX_TEMPLATE_BYTES made of `unit` repeated. */
const filled = (unit: string): string => unit.repeat(Math.floor((MAX_TEMPLATE_BYTES - 64) / unit.length));

async function main(): Promise<void> {
  const table: string[] = [];
  const results: Record<string, unknown> = { latencyMs: LATENCY_MS, rounds: ROUNDS, node: process.version, date: new Date().toISOString() };

  // --- 2. the serving thread -----------------------------------------------------------------
  const maxExpressions = Array.from({ length: MAX_TEMPLATE_EXPRESSIONS }, (_, i) => `key${i}: "{{ secret "s${i % 10}" | yaml }}"\n`).join('');
  const padded = maxExpressions + '#'.repeat(Math.max(0, MAX_TEMPLATE_BYTES - 64 - Buffer.byteLength(maxExpressions)));
  for (const [label, text] of [
    [`${MAX_TEMPLATE_BYTES / 1024} KiB, ${MAX_TEMPLATE_EXPRESSIONS} expressions with | yaml`, padded],
    [`${MAX_TEMPLATE_BYTES / 1024} KiB of "{{{{"`, filled('{{')],
    [`${MAX_TEMPLATE_BYTES / 1024} KiB of "{ {{ word" (not expressions)`, filled('{ {{ abcdefghijklmnopqrstuvwxyz012 ')],
    [`${MAX_TEMPLATE_BYTES / 1024} KiB of "{{ {{ " (not expressions)`, filled('{{ ')],
    [`${MAX_TEMPLATE_BYTES / 1024} KiB of plain text, 1 line`, filled('a')],
  ] as const) {
    const r = serveThread(text);
    results[`serveThread ${label}`] = r;
    table.push(`serving thread, ${label}: parse ${r.parseMs} ms, render ${r.renderMs} ms (${r.expressions} expressions, median of ${CPU_ROUNDS})`);
  }

  // --- 1. publish latency ----------------------------------------------------------------------
  const vaultOptions: DevVaultOptions = {
    seed: parseSeed(
      stringify({
        clients: [
          { clientId: 'bench-client', clientSecret: 'bench-secret', read: ['*'], crypto: [{ role: 'crypto-service-encryption-user', keys: ['cfg'] }] },
          { clientId: 'sealer', clientSecret: 'sealer-secret', read: [], crypto: [{ role: 'crypto-officer', keys: ['cfg'] }] },
        ],
        secrets: Array.from({ length: N }, (_, i) => ({ name: `bench-${i}`, value: `value-${i}-${'x'.repeat(64)}` })),
      }),
      'bench seed',
    ),
    latencyMs: 0,
  };
  const vault = await startDevVault(vaultOptions);
  const { jwk, privateKey } = generateKeyVersion({ kty: 'RSA', size: 2048, crv: 'P-256' });
  vault.store.putKey('cfg', jwk, privateKey);
  const sealer = new KeyVaultDataKeys({
    credential: new ClientSecretCredential(vault.tenantId, 'sealer', 'sealer-secret', { authorityHost: vault.url, disableInstanceDiscovery: true, tlsOptions: { ca: vault.caPem } }),
    settings: { caPem: vault.caPem, authorityHost: vault.url, allowedVaultOrigins: [vault.url], maxRetries: 0 },
    cloud: AZURE_CLOUDS[0]!,
    allowedOrigins: [vault.url],
    log: createLogger({ level: 'silent' }),
    maxAttempts: 1,
  });
  const { markers } = await sealValues(Array.from({ length: N }, (_, i) => `sealed-${i}`), `${vault.url}/keys/cfg`, sealer);
  vaultOptions.latencyMs = LATENCY_MS;

  const work = await mkdtemp('/dev/shm/podvault-bench-tmpl-');
  const classes = join(work, 'classes');
  const kubeletDir = join(work, 'kubelet');
  await mkdir(classes);
  await mkdir(kubeletDir);
  await writeFile(join(work, 'ca.pem'), vault.caPem);
  const secrets = Array.from({ length: N }, (_, i) => ({ objectName: `bench-${i}`, objectType: 'secret' }));
  const references = secrets.map((s, i) => `key${i}: "{{ secret "${s.objectName}" | yaml }}"`).join('\n');
  const sealedLines = markers.map((m, i) => `sealed${i}: ${m}`).join('\n');
  const spc = (name: string, objects: object[]) => ({ apiVersion: 'secrets-store.csi.x-k8s.io/v1', kind: 'SecretProviderClass', metadata: { name, namespace: 'default' }, spec: { provider: 'azure', parameters: { vaultUri: vault.url, tenantId: vault.tenantId, objects: stringify({ array: objects.map((o) => stringify(o)) }) } } });
  const cases = [
    ['10 plain objects', 'plain', secrets],
    ['10 objects + a template with 10 references (ConfigMap)', 'template', [...secrets, { objectName: 'app', objectType: 'template', objectAlias: 'app.yaml', configMap: { name: 'app', key: 'refs' } }]],
    ['10 objects + a template with 10 references and 10 sealed values', 'sealed', [...secrets, { objectName: 'app', objectType: 'template', objectAlias: 'app.yaml', configMap: { name: 'app', key: 'sealed' } }]],
  ] as const;
  await writeFile(
    join(classes, 'cluster.yaml'),
    [...cases.map(([, name, objects]) => spc(name, [...objects])), { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'app', namespace: 'default' }, data: { refs: `${references}\n`, sealed: `${references}\n${sealedLines}\n` } }].map((d) => stringify(d)).join('---\n'),
  );

  const endpoint = `unix://${join(work, 'csi.sock')}`;
  const child = spawn(process.execPath, [join(packageRoot, 'bin', 'podvault.js'), 'driver', '--endpoint', endpoint, '--standalone', classes, '--kubelet-dir', kubeletDir, '--ca-file', join(work, 'ca.pem'), '--authority-host', vault.url, '--allow-vault-uri', vault.url, '--log-level', 'warn'], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, NODE_NAME: 'bench-node' },
  });
  const client = new CsiClient(endpoint);
  let seq = 0;
  const publishOnce = async (className: string): Promise<number> => {
    seq += 1;
    const v = ephemeralVolume({ kubeletDir, pod: { namespace: 'default', name: `p${seq}`, uid: `bench-uid-${seq}`, serviceAccount: 'default' }, volumeName: 'secrets', className, secrets: { clientid: 'bench-client', clientsecret: 'bench-secret' } });
    await mkdir(join(v.targetPath, '..'), { recursive: true });
    const started = performance.now();
    await client.publish(v.request);
    const ms = performance.now() - started;
    await client.unpublish({ volumeId: v.volumeId, targetPath: v.targetPath });
    await rm(join(kubeletDir, 'pods', `bench-uid-${seq}`), { recursive: true, force: true });
    return ms;
  };
  try {
    for (let i = 0; ; i++) {
      try {
        if ((await client.probe()).ready?.value) break;
      } catch (err) {
        if (i > 100) throw err;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    for (const [, name] of cases) await publishOnce(name); // token, TLS handshakes, the key client
    // Rounds interleave the cases, so drift of the shared machine falls on all of them alike.
    const samples = new Map<string, number[]>(cases.map(([, name]) => [name, []]));
    const calls = new Map<string, { secrets: number; unwraps: number }>(cases.map(([, name]) => [name, { secrets: 0, unwraps: 0 }]));
    for (let r = 0; r < ROUNDS; r++) {
      for (const [, name] of cases) {
        const secretsBefore = vault.requests.secret ?? 0;
        const unwrapsBefore = vault.vaultLog.filter((x) => x.path.endsWith('/unwrapkey')).length;
        samples.get(name)!.push(await publishOnce(name));
        const c = calls.get(name)!;
        c.secrets += (vault.requests.secret ?? 0) - secretsBefore;
        c.unwraps += vault.vaultLog.filter((x) => x.path.endsWith('/unwrapkey')).length - unwrapsBefore;
      }
    }
    for (const [label, name] of cases) {
      const s = samples.get(name)!;
      const c = calls.get(name)!;
      const entry = { medianMs: median(s), p99Ms: p99(s), secretRequestsPerPublish: c.secrets / ROUNDS, unwrapsPerPublish: c.unwraps / ROUNDS };
      results[name] = entry;
      table.push(`${label}, vault ${LATENCY_MS} ms: publish median ${entry.medianMs} ms, p99 ${entry.p99Ms} ms; per publish ${entry.secretRequestsPerPublish} secret reads, ${entry.unwrapsPerPublish} unwraps`);
    }
  } finally {
    client.close();
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    await vault.close();
    await rm(work, { recursive: true, force: true });
  }
  process.stdout.write(`${table.join('\n')}\n`);
  await writeFile(join(packageRoot, 'bench', 'templates-results.json'), `${JSON.stringify(results, null, 2)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
