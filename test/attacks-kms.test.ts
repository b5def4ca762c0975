import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { status } from '@grpc/grpc-js';
import { ClientSecretCredential } from '@azure/identity';
import { KeyClient } from '@azure/keyvault-keys';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDevVault } from '../src/devvault/server.js';
import type { DevVault } from '../src/devvault/server.js';
import { parseSeed } from '../src/devvault/seed.js';
import { kmsKeyId } from '../src/kms/key-ref.js';
import { KmsClient } from '../src/kms/kms-client.js';
import { startPluginProcess, until } from './support/kms-plugin-process.js';
import type { PluginProcess } from './support/kms-plugin-process.js';

const SECRET = 'kms-attack-secret-Zt81-never-log-me';
const BIN = join(import.meta.dirname, '..', 'bin', 'podvault.js');
const run = promisify(execFile);

// The plugin's identity may use every key of the vault (a vault-wide role, as operators often
// grant it): only the plugin's own checks keep it on the configured key.
const SEED = `
clients:
  - clientId: kms-sp
    clientSecret: ${SECRET}
    crypto: [{ role: crypto-service-encryption-user, keys: ["etcd-kek", "other-key"] }]
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
const failure = (p: Promise<unknown>): Promise<unknown> => p.then(() => undefined, (e: unknown) => e);


/**
 * Attacks on `podvault kms-plugin` (docs/security.md §11): a hostile caller of its socket, a
 * hostile or broken vault origin, and a hostile config file. The plugin runs through the real CLI
 * on a real unix socket, against dev-vault over HTTPS through the real Azure SDK.
 */
describe('attacks on podvault kms-plugin', () => {
  let vault: DevVault;
  let work: string;
  /** Health round trip every second: for attacks that arrive through the round trip. */
  let fast: PluginProcess;
  /** Health round trip only at start: faults injected later reach Encrypt and Decrypt only. */
  let quiet: PluginProcess;
  const currentVersion = (name: string): string => (vault.store.list('keys', name) ?? []).at(-1)!.version;
  const kid = (name: string, version: string): string => `${vault.url}/keys/${name}/${version}`;
  const args = (socket: string, interval: string, extra: string[] = []): string[] => [
    '--listen', `unix://${join(work, socket)}`,
    '--key-id', `${vault.url}/keys/etcd-kek`,
    '--config-file-path', join(work, 'azure.json'),
    '--ca-file', join(work, 'ca.pem'),
    '--authority-host', vault.url,
    '--health-interval', interval,
    '--vault-max-attempts', '1',
    ...extra,
  ];

  beforeAll(async () => {
    vault = await startDevVault({ seed: parseSeed(SEED, 'kms attack seed') });
    work = await mkdtemp(join(tmpdir(), 'podvault-kms-attack-'));
    await writeFile(join(work, 'ca.pem'), vault.caPem);
    await writeFile(join(work, 'azure.json'), JSON.stringify({ cloud: 'AzurePublicCloud', tenantId: vault.tenantId, aadClientId: 'kms-sp', aadClientSecret: SECRET }), { mode: 0o600 });
    [fast, quiet] = await Promise.all([
      startPluginProcess(args('fast.sock', '1s')),
      startPluginProcess(args('quiet.sock', '60m', ['--vault-max-in-flight', '4'])),
    ]);
  }, 60_000);
  afterAll(async () => {
    await fast?.stop();
    await quiet?.stop();
    await vault?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('a hostile vault: a versionless getKey that answers with another key\'s version is not followed (no wrap with other-key, healthz says why)', async () => {
    const admin = new KeyClient(vault.url, new ClientSecretCredential(vault.tenantId, 'key-admin', 'key-admin-secret', { authorityHost: vault.url, disableInstanceDiscovery: true, tlsOptions: { ca: vault.caPem } }), {
      tlsOptions: { ca: vault.caPem },
      disableChallengeResourceVerification: true,
    });
    const other = await admin.getKey('other-key');
    const jwk = other.key!;
    const b64 = (b: Uint8Array | undefined): string => Buffer.from(b ?? []).toString('base64url');
    const body = JSON.stringify({ key: { kid: other.id, kty: 'RSA', n: b64(jwk.n), e: b64(jwk.e), key_ops: ['wrapKey', 'unwrapKey'] }, attributes: { enabled: true } });
    const before = (await fast.client.status()).keyId;
    const seen = vault.vaultLog.length;
    vault.injectFault({ path: /^\/keys\/etcd-kek\/?$/, times: 10_000, body });
    try {
      const healthz = await until('an unhealthy Status', async () => {
        const s = await fast.client.status();
        return s.healthz === 'ok' ? undefined : s.healthz;
      }, 6000);
      expect(healthz).toContain('other-key');
      expect((await fast.client.status()).keyId).toBe(before);
      expect(vault.vaultLog.slice(seen).filter((r) => r.path.startsWith('/keys/other-key')).map((r) => r.path)).toEqual([]);
    } finally {
      vault.clearFaults();
    }
    await until('healthy again', async () => ((await fast.client.status()).healthz === 'ok' ? true : undefined), 6000);
  });

  it('a hostile vault: a wrapKey answer for another key (its kid) fails Encrypt instead of being annotated as the configured key', async () => {
    const foreign = kid('other-key', currentVersion('other-key'));
    vault.injectFault({ path: /^\/keys\/etcd-kek\/[^/]+\/wrapkey$/, times: 1, body: JSON.stringify({ kid: foreign, value: randomBytes(256).toString('base64url') }) });
    const err = await failure(quiet.client.encrypt(randomBytes(32)));
    vault.clearFaults();
    expect(rpcCode(err)).toBe(status.INTERNAL);
    expect(rpcDetails(err)).toContain('other-key');
    // The honest answer still works.
    expect((await quiet.client.encrypt(randomBytes(32))).keyId).toBe(kmsKeyId(kid('etcd-kek', currentVersion('etcd-kek'))));
  });

  it('a hostile vault: an unwrapKey result that is empty or larger than any seed is not handed to kube-apiserver', async () => {
    const enc = await quiet.client.encrypt(randomBytes(32));
    const request = { ciphertext: enc.ciphertext, keyId: enc.keyId, annotations: enc.annotations };
    const version = currentVersion('etcd-kek');
    for (const value of [Buffer.alloc(0), randomBytes(4096)]) {
      vault.injectFault({ path: /\/unwrapkey$/, times: 1, body: JSON.stringify({ kid: kid('etcd-kek', version), value: value.toString('base64url') }) });
      const err = await failure(quiet.client.decrypt(request));
      vault.clearFaults();
      expect(rpcCode(err), `unwrap result of ${value.length} bytes`).toBe(status.INTERNAL);
      expect(rpcDetails(err)).toMatch(/unwrapKey answered \d+ bytes/);
    }
    expect((await quiet.client.decrypt(request)).plaintext).toHaveLength(32);
  });

  it('a ciphertext wrapped under a version since disabled: FAILED_PRECONDITION naming the disabled version, not a role to grant', async () => {
    const enc = await quiet.client.encrypt(randomBytes(32));
    const version = currentVersion('etcd-kek');
    vault.store.setEnabled('keys', 'etcd-kek', version, false);
    try {
      const err = await failure(quiet.client.decrypt({ ciphertext: enc.ciphertext, keyId: enc.keyId, annotations: enc.annotations }));
      expect(rpcCode(err)).toBe(status.FAILED_PRECONDITION);
      expect(rpcDetails(err)).toMatch(/disabled/);
      expect(rpcDetails(err)).not.toContain('grant it');
    } finally {
      vault.store.setEnabled('keys', 'etcd-kek', version, true);
    }
  });

  it('a Decrypt flood against a slow vault: every call is answered within the 3 s timeout (late ones fail fast), the limiter is respected, Status stays instant', async () => {
    const enc = await quiet.client.encrypt(randomBytes(32));
    const request = { ciphertext: enc.ciphertext, keyId: enc.keyId, annotations: enc.annotations };
    // A caller with no 3 s deadline of its own (any root process on the node).
    const patient = new KmsClient(quiet.endpoint, 60_000);
    vault.injectFault({ path: /\/unwrapkey$/, times: 10_000, delayMs: 1000 });
    try {
      const started = Date.now();
      const answers = await Promise.all(
        Array.from({ length: 40 }, () =>
          patient.decrypt(request).then(
            () => ({ ms: Date.now() - started, code: status.OK }),
            (e: unknown) => ({ ms: Date.now() - started, code: rpcCode(e) }),
          ),
        ),
      );
      const t0 = Date.now();
      await quiet.client.status();
      expect(Date.now() - t0).toBeLessThan(500);
      const slowest = Math.max(...answers.map((a) => a.ms));
      expect(slowest, 'the slowest Decrypt answer (ms)').toBeLessThan(3500);
      expect(answers.filter((a) => a.code === status.OK).length).toBeGreaterThanOrEqual(4);
      for (const a of answers) expect([status.OK, status.DEADLINE_EXCEEDED]).toContain(a.code);
    } finally {
      vault.clearFaults();
      patient.close();
    }
  }, 30_000);

  it('a Status polling storm never calls the vault', async () => {
    const seen = vault.vaultLog.length;
    const answers = await Promise.all(Array.from({ length: 500 }, () => quiet.client.status()));
    for (const s of answers) expect(s.version).toBe('v2');
    // The other plugin of this file shares the vault and makes its own health round trip every
    // second (a few requests each); 500 Status calls that reached the vault would add 500 or more.
    expect(vault.vaultLog.length - seen).toBeLessThan(50);
  });

  it('a config file that is a FIFO or a device (a symlink to /dev/zero) is refused at once, not read forever', async () => {
    await run('mkfifo', [join(work, 'fifo.json')]);
    await symlink('/dev/zero', join(work, 'zero.json'));
    for (const file of ['fifo.json', 'zero.json']) {
      const started = Date.now();
      const err = await failure(run(process.execPath, [BIN, 'kms-plugin', '--listen', `unix://${join(work, 'x.sock')}`, '--key-id', `${vault.url}/keys/etcd-kek`, '--config-file-path', join(work, file)], { timeout: 8000 }));
      expect(Date.now() - started, file).toBeLessThan(7000);
      expect((err as { stderr?: string }).stderr ?? '', file).toContain('not a regular file');
    }
  }, 30_000);

  it('azure.json with odd types holding the secret: the error names the key, never the value', async () => {
    const odd = { tenantId: { value: SECRET }, aadClientId: 7, aadClientSecret: [SECRET], useManagedIdentityExtension: SECRET };
    await writeFile(join(work, 'odd.json'), JSON.stringify(odd), { mode: 0o600 });
    const err = await failure(run(process.execPath, [BIN, 'kms-plugin', '--listen', `unix://${join(work, 'y.sock')}`, '--key-id', `${vault.url}/keys/etcd-kek`, '--config-file-path', join(work, 'odd.json')], { timeout: 8000 }));
    const stderr = (err as { stderr?: string }).stderr ?? '';
    expect(stderr).toContain('aadClientSecret');
    expect(stderr).not.toContain(SECRET);
  });
});
