import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClientSecretCredential } from '@azure/identity';
import { KeyClient } from '@azure/keyvault-keys';
import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiServerEmulator, parseStoredBytes, storedBytes } from '../src/devvault/kms-apiserver.js';
import { parseSeed } from '../src/devvault/seed.js';
import { startDevVault } from '../src/devvault/server.js';
import type { DevVault } from '../src/devvault/server.js';
import { EXIT_CODES } from '../src/etcd-audit/exit-codes.js';
import { kmsKeyId } from '../src/kms/key-ref.js';
import { startEtcd } from './support/etcd-server.js';
import type { EtcdServer } from './support/etcd-server.js';
import { startPluginProcess, until } from './support/kms-plugin-process.js';
import type { PluginProcess } from './support/kms-plugin-process.js';

const BIN = join(import.meta.dirname, '..', 'bin', 'podvault.js');
const PLUGIN_SECRET = 'e2e-kms-sp-secret-Zr81-never-log-me';
/** The provider's name in the EncryptionConfiguration: it is part of every stored value's prefix. */
const PROVIDER = 'podvault';
/** In every Secret's value: it must never reach the audit's output. */
const CANARY = 'CANARY-9e27b1-secret-plaintext';

const SEED = `
clients:
  - clientId: kms-e2e-sp
    clientSecret: ${PLUGIN_SECRET}
    read: []
    crypto: [{ role: crypto-service-encryption-user, keys: ["etcd-kek"] }]
  - clientId: key-admin
    clientSecret: key-admin-secret
    crypto: [{ role: crypto-officer, keys: ["etcd-kek"] }]
keys:
  - name: etcd-kek
`;

/** A Secret as kube-apiserver serialises it before the storage transformer: protobuf with the `k8s\0` magic. */
const secretBytes = (name: string): Buffer => Buffer.concat([Buffer.from('k8s\0\n\x0cv1\x12\x06Secret'), Buffer.from(`${name}:${CANARY}`)]);
const key = (ns: string, name: string): string => `/registry/secrets/${ns}/${name}`;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

interface FlaggedJson {
  resource: string;
  namespace: string;
  name: string;
  provider: string;
  keyId?: string;
}

interface ReportJson {
  total: number;
  groups: { resource: string; provider: string; configName?: string; keyId?: string; count: number }[];
  plaintext: FlaggedJson[];
  otherKey?: FlaggedJson[];
  verdict: string;
  exitCode: number;
}

const outputs: string[] = [];

/** `podvault etcd-audit` through the real entry point; resolves with the exit code instead of throwing. */
function audit(args: readonly string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, 'etcd-audit', ...args], { timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      outputs.push(stdout, stderr);
      resolve({ code, stdout, stderr });
    });
  });
}

const names = (objects: readonly FlaggedJson[] | undefined): string[] => (objects ?? []).map((o) => `${o.namespace}/${o.name}`).sort();

/**
 * The whole path an operator takes: a real `podvault kms-plugin` on a unix socket wrapping with a
 * dev-vault key, an apiserver stand-in writing Secrets into a real etcd in kube-apiserver's
 * format, `podvault etcd-audit` finding the one plaintext Secret, then a key rotation in Key
 * Vault, and the audit's `--expect-key-id` gate naming exactly the Secrets still under the old key.
 */
describe('kms-plugin, a real etcd and etcd-audit, end to end', () => {
  let vault: DevVault;
  let etcd: EtcdServer;
  let plugin: PluginProcess;
  let client: Etcd3;
  let work: string;
  let apiserver: ApiServerEmulator;
  let oldKeyId = '';
  let newKeyId = '';

  const writeSecret = async (ns: string, name: string): Promise<void> => {
    const stored = await apiserver.write(secretBytes(name), key(ns, name));
    await client.put(key(ns, name)).value(storedBytes(stored, PROVIDER));
  };

  beforeAll(async () => {
    [vault, etcd] = await Promise.all([startDevVault({ seed: parseSeed(SEED, 'kms e2e seed') }), startEtcd()]);
    client = new Etcd3({ hosts: etcd.endpoint });
    work = await mkdtemp(join(tmpdir(), 'podvault-kms-e2e-'));
    await writeFile(join(work, 'ca.pem'), vault.caPem);
    await writeFile(join(work, 'azure.json'), JSON.stringify({ tenantId: vault.tenantId, aadClientId: 'kms-e2e-sp', aadClientSecret: PLUGIN_SECRET }), { mode: 0o600 });
    plugin = await startPluginProcess([
      '--listen', `unix://${join(work, 'kms.sock')}`,
      '--key-id', `${vault.url}/keys/etcd-kek`,
      '--config-file-path', join(work, 'azure.json'),
      '--ca-file', join(work, 'ca.pem'),
      '--authority-host', vault.url,
      '--health-interval', '1s',
      '--log-level', 'debug',
    ]);
    apiserver = new ApiServerEmulator(plugin.client);
  }, 60_000);

  afterAll(async () => {
    client?.close();
    await plugin?.stop();
    await Promise.all([vault?.close(), etcd?.stop()]);
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('the audit reports the plaintext Secret by name and the KMS v2 ones under the key_id Status reports', async () => {
    oldKeyId = (await plugin.client.status()).keyId;
    expect(await apiserver.poll()).toBe(oldKeyId);
    for (const [ns, name] of [['team-a', 'db'], ['team-a', 'api'], ['team-b', 'tls']] as const) await writeSecret(ns, name);
    // Written before encryption at rest was switched on.
    await client.put(key('default', 'legacy')).value(secretBytes('legacy'));

    const run = await audit(['--endpoints', etcd.endpoint, '--json']);
    expect(run.code).toBe(EXIT_CODES.plaintext);
    const report = JSON.parse(run.stdout) as ReportJson;
    expect(report.total).toBe(4);
    expect(names(report.plaintext)).toEqual(['default/legacy']);
    expect(report.groups.filter((g) => g.provider === 'kms-v2')).toEqual([{ resource: 'secrets', provider: 'kms-v2', configName: PROVIDER, keyId: oldKeyId, count: 3 }]);

    // The operator's fix (`kubectl replace`): the apiserver rewrites it through the plugin, and the gate passes.
    await writeSecret('default', 'legacy');
    const clean = await audit(['--endpoints', etcd.endpoint, '--expect-key-id', oldKeyId, '--json']);
    expect(clean.code).toBe(EXIT_CODES.clean);
    expect((JSON.parse(clean.stdout) as ReportJson).verdict).toBe('clean');
  });

  it('after a key rotation the gate exits 4 and names exactly the Secrets still under the old key, which stay readable', async () => {
    const admin = new KeyClient(vault.url, new ClientSecretCredential(vault.tenantId, 'key-admin', 'key-admin-secret', { authorityHost: vault.url, disableInstanceDiscovery: true, tlsOptions: { ca: vault.caPem } }), {
      tlsOptions: { ca: vault.caPem },
      disableChallengeResourceVerification: true,
    });
    const rotated = await admin.rotateKey('etcd-kek');
    newKeyId = kmsKeyId(`${vault.url}/keys/etcd-kek/${rotated.properties.version!}`);
    expect(newKeyId).not.toBe(oldKeyId);
    await until('the new key_id in Status', async () => ((await plugin.client.status()).keyId === newKeyId ? true : undefined), 10_000);

    // The apiserver's next poll re-seeds under the new key; one Secret is written again.
    expect(await apiserver.poll()).toBe(newKeyId);
    expect(apiserver.encryptCalls).toBe(2);
    await writeSecret('team-a', 'db');

    // A restarted apiserver (no seed cache) reads every Secret back from etcd: the old ones through
    // Decrypt with the old key version, named in their annotations.
    const restarted = new ApiServerEmulator(plugin.client);
    for (const [ns, name] of [['team-a', 'db'], ['team-a', 'api'], ['team-b', 'tls'], ['default', 'legacy']] as const) {
      const stored = parseStoredBytes((await client.get(key(ns, name)).buffer())!, PROVIDER);
      expect(stored.keyId).toBe(name === 'db' ? newKeyId : oldKeyId);
      expect((await restarted.read(stored, key(ns, name))).equals(secretBytes(name))).toBe(true);
    }
    expect(restarted.decryptCalls).toBe(2); // one seed per key_id, as kube-apiserver caches them

    const gate = await audit(['--endpoints', etcd.endpoint, '--expect-key-id', newKeyId, '--json']);
    expect(gate.code).toBe(EXIT_CODES.otherKey);
    const report = JSON.parse(gate.stdout) as ReportJson;
    expect(report.verdict).toBe('otherKey');
    expect(names(report.plaintext)).toEqual([]);
    expect(names(report.otherKey)).toEqual(['default/legacy', 'team-a/api', 'team-b/tls']);
    expect(new Set(report.otherKey!.map((o) => o.keyId))).toEqual(new Set([oldKeyId]));
    const kmsRows = report.groups.filter((g) => g.provider === 'kms-v2');
    expect(Object.fromEntries(kmsRows.map((g) => [g.keyId, g.count]))).toEqual({ [newKeyId]: 1, [oldKeyId]: 3 });

    // The table a person reads says the same: the three names under the rewrite heading.
    const table = await audit(['--endpoints', etcd.endpoint, '--expect-key-id', newKeyId]);
    expect(table.code).toBe(EXIT_CODES.otherKey);
    for (const name of ['default/legacy', 'team-a/api', 'team-b/tls']) expect(table.stdout).toContain(`secrets ${name}`);
    expect(table.stdout).not.toContain('secrets team-a/db');
  });

  it('no audit output and no line of the plugin\'s log holds a Secret\'s plaintext or the plugin\'s client secret', () => {
    expect(outputs.length).toBeGreaterThanOrEqual(8);
    expect(plugin.output.length).toBeGreaterThan(5);
    for (const text of [...outputs, ...plugin.output]) {
      expect(text).not.toContain(CANARY);
      expect(text).not.toContain(PLUGIN_SECRET);
    }
  });
});
