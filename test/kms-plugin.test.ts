import { randomBytes } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { ClientSecretCredential } from '@azure/identity';
import { KeyClient } from '@azure/keyvault-keys';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDevVault } from '../src/devvault/server.js';
import type { DevVault } from '../src/devvault/server.js';
import { parseSeed } from '../src/devvault/seed.js';
import { ANNOTATION_ALGORITHM, ANNOTATION_KEY_ID, ANNOTATION_VERSION } from '../src/kms/envelope.js';
import { kmsKeyId } from '../src/kms/key-ref.js';
import { ApiServerEmulator } from '../src/devvault/kms-apiserver.js';
import { startPluginProcess, until } from './support/kms-plugin-process.js';
import type { PluginProcess } from './support/kms-plugin-process.js';

const PLUGIN_SECRET = 'kms-sp-secret-Qv93-never-log-me';
const NO_WRAP_SECRET = 'no-wrap-secret-Lm27-never-log-me';
const INTERVAL_S = 1;

const SEED = `
clients:
  - clientId: kms-plugin-sp
    clientSecret: ${PLUGIN_SECRET}
    read: []
    crypto: [{ role: crypto-service-encryption-user, keys: ["etcd-kek"] }]
  - clientId: no-wrap-sp
    clientSecret: ${NO_WRAP_SECRET}
    read: ["*"]
  - clientId: key-admin
    clientSecret: key-admin-secret
    crypto: [{ role: crypto-officer }]
keys:
  - name: etcd-kek
    versions: 2
  - name: other-key
`;

const rpcCode = (err: unknown): number | undefined => (err as { code?: number }).code;
const rpcDetails = (err: unknown): string => (err as { details?: string }).details ?? '';


/**
 * `podvault kms-plugin` as kube-apiserver sees it: started through the real CLI on a real unix
 * socket, called with @grpc/grpc-js and our KMS v2 proto, wrapping with a dev-vault key over HTTPS
 * through the real @azure/keyvault-keys SDK.
 */
describe('podvault kms-plugin over its socket', () => {
  let vault: DevVault;
  let work: string;
  let plugin: PluginProcess;
  const azureJson = (clientId: string, secret: string): string => JSON.stringify({ cloud: 'AzurePublicCloud', tenantId: vault.tenantId, aadClientId: clientId, aadClientSecret: secret, location: 'westeurope' });
  const versions = (): string[] => (vault.store.list('keys', 'etcd-kek') ?? []).map((v) => v.version);
  const kid = (version: string): string => `${vault.url}/keys/etcd-kek/${version}`;
  const commonArgs = (): string[] => ['--ca-file', join(work, 'ca.pem'), '--authority-host', vault.url, '--health-interval', `${INTERVAL_S}s`, '--vault-max-attempts', '2', '--log-level', 'debug'];

  beforeAll(async () => {
    vault = await startDevVault({ seed: parseSeed(SEED, 'kms test seed') });
    work = await mkdtemp(join(tmpdir(), 'podvault-kms-'));
    await writeFile(join(work, 'ca.pem'), vault.caPem);
    await writeFile(join(work, 'azure.json'), azureJson('kms-plugin-sp', PLUGIN_SECRET), { mode: 0o600 });
    plugin = await startPluginProcess([
      '--listen', `unix://${join(work, 'kms.sock')}`,
      '--key-id', `${vault.url}/keys/etcd-kek`,
      '--config-file-path', join(work, 'azure.json'),
      '--metrics-addr', '127.0.0.1:0',
      ...commonArgs(),
    ]);
  }, 60_000);
  afterAll(async () => {
    await plugin?.stop();
    await vault?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('serves on a 0600 socket; Status is v2, ok, and the key_id of the current version (SHA-256 of its id), without calling the vault', async () => {
    expect(statSync(join(work, 'kms.sock')).mode & 0o777).toBe(0o600);
    const before = vault.vaultLog.length;
    const answers = await Promise.all([1, 2, 3, 4, 5].map(() => plugin.client.status()));
    for (const s of answers) expect(s).toEqual({ version: 'v2', healthz: 'ok', keyId: kmsKeyId(kid(versions()[1]!)) });
    // Status answers from the background round trip: five polls cost no vault requests of their own.
    expect(vault.vaultLog.length - before).toBeLessThanOrEqual(3);
  });

  it('Encrypt wraps a 32-byte seed with wrapKey RSA-OAEP-256 under the current version; Decrypt gives it back', async () => {
    const seed = randomBytes(32);
    const before = vault.requests['key-wrapkey'] ?? 0;
    const enc = await plugin.client.encrypt(seed, 'uid-1');
    expect(enc.ciphertext).toHaveLength(256);
    expect(enc.ciphertext.includes(seed)).toBe(false);
    expect(enc.keyId).toBe(kmsKeyId(kid(versions()[1]!)));
    expect(Object.fromEntries(Object.entries(enc.annotations).map(([k, v]) => [k, v.toString()]))).toEqual({
      [ANNOTATION_KEY_ID]: kid(versions()[1]!),
      [ANNOTATION_ALGORITHM]: 'RSA-OAEP-256',
      [ANNOTATION_VERSION]: '1',
    });
    expect((vault.requests['key-wrapkey'] ?? 0) - before).toBeGreaterThanOrEqual(1);
    expect(vault.requests['key-encrypt'] ?? 0).toBe(0);
    const dec = await plugin.client.decrypt({ ciphertext: enc.ciphertext, keyId: enc.keyId, annotations: enc.annotations });
    expect(dec.plaintext.equals(seed)).toBe(true);
  });

  it('an apiserver-like client: objects survive a key rotation in Key Vault with one plugin; new writes use the new key_id', async () => {
    const apiserver = new ApiServerEmulator(plugin.client);
    const oldKeyId = await apiserver.poll();
    const secrets = ['alpha', 'beta', 'gamma'].map((n) => ({ path: `/registry/secrets/default/${n}`, value: Buffer.from(`value-of-${n}`) }));
    const stored = await Promise.all(secrets.map((s) => apiserver.write(s.value, s.path)));
    expect(apiserver.encryptCalls).toBe(1);

    const admin = new KeyClient(vault.url, new ClientSecretCredential(vault.tenantId, 'key-admin', 'key-admin-secret', { authorityHost: vault.url, disableInstanceDiscovery: true, tlsOptions: { ca: vault.caPem } }), {
      tlsOptions: { ca: vault.caPem },
      disableChallengeResourceVerification: true,
    });
    const rotated = await admin.rotateKey('etcd-kek');
    const newKeyId = kmsKeyId(kid(rotated.properties.version!));
    const started = Date.now();
    await until('the new key_id in Status', async () => ((await plugin.client.status()).keyId === newKeyId ? true : undefined), (INTERVAL_S + 3) * 1000);
    expect(Date.now() - started).toBeLessThan((INTERVAL_S + 3) * 1000);

    expect(await apiserver.poll()).toBe(newKeyId);
    expect(apiserver.encryptCalls).toBe(2);
    const fresh = await apiserver.write(Buffer.from('after-rotation'), '/registry/secrets/default/delta');
    expect(fresh.keyId).toBe(newKeyId);
    expect(fresh.annotations[ANNOTATION_KEY_ID]?.toString()).toBe(kid(rotated.properties.version!));

    // A restarted apiserver (no seed cache) reads everything through Decrypt: old objects with the old version.
    const restarted = new ApiServerEmulator(plugin.client);
    for (const [i, s] of secrets.entries()) expect((await restarted.read(stored[i]!, s.path)).equals(s.value)).toBe(true);
    expect((await restarted.read(fresh, '/registry/secrets/default/delta')).toString()).toBe('after-rotation');
    expect(restarted.decryptCalls).toBe(2);
    expect(stored[0]!.keyId).toBe(oldKeyId);
  });

  describe('refusals before any vault call', () => {
    let good: { ciphertext: Buffer; keyId: string; annotations: Record<string, Buffer> };
    beforeAll(async () => {
      const enc = await plugin.client.encrypt(randomBytes(32));
      good = { ciphertext: enc.ciphertext, keyId: enc.keyId, annotations: enc.annotations };
    });

    async function refused(request: { ciphertext: Buffer; keyId: string; annotations: Record<string, Buffer> }): Promise<{ code?: number; details: string }> {
      const before = vault.vaultLog.filter((r) => r.path.endsWith('/unwrapkey')).length;
      const err = await plugin.client.decrypt(request).then(() => undefined, (e: unknown) => e);
      expect(err, 'Decrypt should fail').toBeDefined();
      expect(vault.vaultLog.filter((r) => r.path.endsWith('/unwrapkey')).length).toBe(before);
      return { code: rpcCode(err), details: rpcDetails(err) };
    }

    it('tampered annotations: another version of the key under the same key_id → INVALID_ARGUMENT', async () => {
      const other = versions()[0]!;
      const r = await refused({ ...good, annotations: { ...good.annotations, [ANNOTATION_KEY_ID]: Buffer.from(kid(other)) } });
      expect(r.code).toBe(status.INVALID_ARGUMENT);
      expect(r.details).toMatch(/key_id does not match annotation key-id\.kms\.podvault\.dev/);
    });

    it('tampered annotations: another algorithm or format → INVALID_ARGUMENT', async () => {
      expect((await refused({ ...good, annotations: { ...good.annotations, [ANNOTATION_ALGORITHM]: Buffer.from('RSA1_5') } })).code).toBe(status.INVALID_ARGUMENT);
      expect((await refused({ ...good, annotations: { ...good.annotations, [ANNOTATION_VERSION]: Buffer.from('2') } })).code).toBe(status.INVALID_ARGUMENT);
    });

    it('a foreign key id (another key of the vault, consistent key_id) → FAILED_PRECONDITION naming it', async () => {
      const foreign = `${vault.url}/keys/other-key/${(vault.store.list('keys', 'other-key') ?? [])[0]!.version}`;
      const r = await refused({ ...good, keyId: kmsKeyId(foreign), annotations: { ...good.annotations, [ANNOTATION_KEY_ID]: Buffer.from(foreign) } });
      expect(r.code).toBe(status.FAILED_PRECONDITION);
      expect(r.details).toContain('is not a version of the configured key');
    });

    it('oversize requests → INVALID_ARGUMENT: ciphertext > 1 KiB, key_id > 1 KiB, annotations > 32 KiB, a non-FQDN annotation key', async () => {
      expect((await refused({ ...good, ciphertext: randomBytes(1025) })).details).toMatch(/ciphertext is 1025 bytes; at most 1024/);
      expect((await refused({ ...good, keyId: 'k'.repeat(1025) })).details).toMatch(/key_id is longer than 1024/);
      expect((await refused({ ...good, annotations: { ...good.annotations, 'big.example.com': Buffer.alloc(33 * 1024) } })).details).toMatch(/annotations are \d+ bytes; at most 32768/);
      expect((await refused({ ...good, annotations: { ...good.annotations, 'NotAnFqdn': Buffer.from('x') } })).details).toMatch(/is not a fully qualified domain name/);
      const err = await plugin.client.encrypt(randomBytes(191)).then(() => undefined, (e: unknown) => e);
      expect(rpcCode(err)).toBe(status.INVALID_ARGUMENT);
    });

    it('a ciphertext this key never wrapped reaches Key Vault and is refused as INVALID_ARGUMENT', async () => {
      const err = await plugin.client.decrypt({ ...good, ciphertext: randomBytes(256) }).then(() => undefined, (e: unknown) => e);
      expect(rpcCode(err)).toBe(status.INVALID_ARGUMENT);
      expect(rpcDetails(err)).toMatch(/Key Vault refused the ciphertext \(HTTP 400\)/);
    });
  });

  it('a vault outage: healthz (Status and /healthz) names the cause within one interval, Encrypt fails within 3 s, and both recover', async () => {
    expect((await fetch(`${plugin.metricsUrl}/healthz`)).status).toBe(200);
    vault.injectFault({ path: /^\/keys\//, times: 10_000, status: 503 });
    try {
      const started = Date.now();
      const healthz = await until('an unhealthy Status', async () => {
        const s = await plugin.client.status();
        return s.healthz === 'ok' ? undefined : s.healthz;
      }, (INTERVAL_S + 4) * 1000);
      expect(Date.now() - started).toBeLessThan((INTERVAL_S + 4) * 1000);
      expect(healthz).toMatch(/^Key Vault round trip failed: vault https:\/\/127\.0\.0\.1:\d+: key etcd-kek.*HTTP 503/);
      const http = await fetch(`${plugin.metricsUrl}/healthz`);
      expect(http.status).toBe(503);
      expect(await http.text()).toContain('HTTP 503');

      const t0 = Date.now();
      const err = await plugin.client.encrypt(randomBytes(32)).then(() => undefined, (e: unknown) => e);
      expect(Date.now() - t0).toBeLessThan(3000);
      expect(rpcCode(err)).toBe(status.UNAVAILABLE);
    } finally {
      vault.clearFaults();
    }
    await until('healthy again', async () => ((await plugin.client.status()).healthz === 'ok' ? true : undefined), 15_000);
    expect((await fetch(`${plugin.metricsUrl}/healthz`)).status).toBe(200);
  });

  it('metrics: operations by result, vault latency, the current key version', async () => {
    const text = await (await fetch(`${plugin.metricsUrl}/metrics`)).text();
    expect(text).toMatch(/podvault_kms_operations_total\{operation="encrypt",result="OK"\} \d+/);
    expect(text).toMatch(/podvault_kms_operations_total\{operation="decrypt",result="INVALID_ARGUMENT"\} \d+/);
    expect(text).toMatch(/podvault_kms_vault_request_duration_seconds_count\{operation="wrapKey"\} \d+/);
    expect(text).toContain(`podvault_kms_key_version_info{version="${versions()[2]}",key_id="${kmsKeyId(kid(versions()[2]!))}"} 1`);
  });

  it('an identity that may read the key but not wrap with it, on an abstract socket: healthz and Encrypt say so (PERMISSION_DENIED)', async () => {
    await writeFile(join(work, 'no-wrap.json'), azureJson('no-wrap-sp', NO_WRAP_SECRET), { mode: 0o600 });
    const name = `podvault-kms-test-${process.pid}`;
    const second = await startPluginProcess(['--listen', `@${name}`, '--key-id', `${vault.url}/keys/etcd-kek`, '--config-file-path', join(work, 'no-wrap.json'), ...commonArgs()]);
    try {
      expect(second.endpoint).toBe(`unix:///@${name}`);
      expect(existsSync(`/${name}`)).toBe(false);
      const s = await second.client.status();
      expect(s.healthz).toMatch(/wrapKey: HTTP 403: the identity may not wrapKey with this key; grant it Key Vault Crypto Service Encryption User/);
      const err = await second.client.encrypt(randomBytes(32)).then(() => undefined, (e: unknown) => e);
      expect(rpcCode(err)).toBe(status.PERMISSION_DENIED);
      expect(rpcDetails(err)).toContain('Key Vault Crypto Service Encryption User');
    } finally {
      await second.stop();
    }
    expect(second.output.join('\n')).not.toContain(NO_WRAP_SECRET);
  });

  it('never logs a secret: not the client secret, not a seed', async () => {
    const seed = randomBytes(32);
    const enc = await plugin.client.encrypt(seed);
    await plugin.client.decrypt({ ciphertext: enc.ciphertext, keyId: enc.keyId, annotations: enc.annotations });
    const log = plugin.output.join('\n');
    expect(log).toContain('"method":"Encrypt"');
    for (const needle of [PLUGIN_SECRET, seed.toString('base64'), seed.toString('hex'), enc.ciphertext.toString('base64')]) expect(log).not.toContain(needle);
    expect(plugin.child.spawnargs.join(' ')).not.toContain(PLUGIN_SECRET);
  });
});
