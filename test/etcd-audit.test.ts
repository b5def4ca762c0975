import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestCa } from '../src/devvault/test-ca.js';
import { encodeEncryptedObject } from '../src/etcd-audit/encrypted-object.js';
import { issueEtcdCert, startEtcd } from './support/etcd-server.js';
import type { EtcdServer } from './support/etcd-server.js';

const BIN = join(import.meta.dirname, '..', 'bin', 'podvault.js');
/** Every value written holds this: it must never reach the audit's stdout or stderr. */
const CANARY = 'CANARY-c4f1e0-stored-value';
const canary = Buffer.from(CANARY);
const KEY_A = 'podvault-kms:9c1d-key-version-a';
const KEY_B = 'podvault-kms:0b7e-key-version-b';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

const outputs: string[] = [];

/** The real entry point, as an operator runs it; resolves with the exit code instead of throwing. */
function audit(args: readonly string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, 'etcd-audit', ...args], { timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      outputs.push(stdout, stderr);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A KMS v2 value as kube-apiserver stores it: prefix, then an EncryptedObject. */
function kmsV2(configName: string, keyId: string): Buffer {
  const envelope = encodeEncryptedObject({
    encryptedData: Buffer.concat([randomBytes(32), canary, randomBytes(16)]),
    keyID: keyId,
    encryptedDEKSource: Buffer.concat([canary, randomBytes(224)]),
    annotations: { 'kid.podvault.io': canary, 'alg.podvault.io': Buffer.from('RSA-OAEP-256') },
    encryptedDEKSourceType: 1,
  });
  return Buffer.concat([Buffer.from(`k8s:enc:kms:v2:${configName}:`), envelope]);
}

const withPrefix = (prefix: string): Buffer => Buffer.concat([Buffer.from(prefix), randomBytes(28), canary]);

/** The main data set, under /registry: every format once or more. */
const MIXED: ReadonlyArray<readonly [string, Buffer]> = [
  ['/registry/secrets/default/plain-protobuf', Buffer.concat([Buffer.from('k8s\0\n\x0cv1\x12\x06Secret'), canary])],
  ['/registry/secrets/default/plain-json', Buffer.from(`{"kind":"Secret","apiVersion":"v1","data":{"password":"${Buffer.from(CANARY).toString('base64')}","raw":"${CANARY}"}}`)],
  ['/registry/secrets/team-a/cbc', withPrefix('k8s:enc:aescbc:v1:key1:')],
  ['/registry/secrets/team-a/gcm', withPrefix('k8s:enc:aesgcm:v1:key2:')],
  ['/registry/secrets/team-a/box', withPrefix('k8s:enc:secretbox:v1:box1:')],
  ['/registry/secrets/team-b/kms1', withPrefix('k8s:enc:kms:v1:azurekms:')],
  ['/registry/secrets/team-b/kms2-a-1', kmsV2('podvault', KEY_A)],
  ['/registry/secrets/team-b/kms2-a-2', kmsV2('podvault', KEY_A)],
  ['/registry/secrets/team-b/kms2-a-3', kmsV2('podvault', KEY_A)],
  ['/registry/secrets/team-c/kms2-b-1', kmsV2('podvault', KEY_B)],
  ['/registry/secrets/team-c/kms2-b-2', kmsV2('podvault', KEY_B)],
  ['/registry/secrets/team-c/garbage', Buffer.concat([randomBytes(8), canary])],
  ['/registry/secrets/team-c/broken-kms2', withPrefix('k8s:enc:kms:v2:podvault:')],
  ['/registry/configmaps/default/settings', Buffer.concat([Buffer.from('k8s\0'), canary])],
  ['/registry/configmaps/default/encrypted', kmsV2('podvault', KEY_A)],
  // Not below /registry/secrets/: never read for --resources secrets.
  ['/registry/secretsextra/default/x', Buffer.concat([Buffer.from('k8s\0'), canary])],
];

describe('podvault etcd-audit against a real etcd', () => {
  let etcd: EtcdServer;

  beforeAll(async () => {
    etcd = await startEtcd();
    const client = new Etcd3({ hosts: etcd.endpoint });
    try {
      for (const [key, value] of MIXED) await client.put(key).value(value);
      // Only KMS v2 under key A, below another --prefix: the clean case and --expect-key-id.
      for (let i = 0; i < 5; i++) await client.put(`/clean/secrets/ns/s${i}`).value(kmsV2('podvault', KEY_A));
      await client.put('/rotating/secrets/ns/new').value(kmsV2('podvault', KEY_B));
      await client.put('/rotating/secrets/ns/old').value(kmsV2('podvault', KEY_A));
      await client.put('/rotating/secrets/ns/cbc').value(withPrefix('k8s:enc:aescbc:v1:key1:'));
      await client.put('/unknown/secrets/ns/odd').value(Buffer.concat([Buffer.from('k8s:enc:future:v9:x:'), canary]));
      // 1,200 objects: pages of 500 and of 7 must count the same.
      const many = [];
      for (let i = 0; i < 1200; i++) many.push(client.put(`/many/secrets/ns-${i % 10}/s-${String(i).padStart(4, '0')}`).value(i % 3 === 0 ? withPrefix('k8s:enc:aescbc:v1:k:') : kmsV2('p', KEY_A)));
      await Promise.all(many);
      // Six values of 400 KB: two and a half fit in a 1 MiB answer.
      for (let i = 0; i < 6; i++) await client.put(`/big/secrets/ns/big-${i}`).value(Buffer.concat([Buffer.from('k8s:enc:aesgcm:v1:k:'), randomBytes(400_000), canary]));
      // One value of 1.2 MB (etcd's default request limit is 1.5 MiB): over a 1 MiB page bound.
      await client.put('/huge/secrets/ns/huge').value(Buffer.concat([Buffer.from('k8s:enc:aesgcm:v1:k:'), randomBytes(1_200_000), canary]));
    } finally {
      client.close();
    }
  }, 120_000);

  afterAll(async () => {
    await etcd?.stop();
    // Whatever ran, no value byte reached the output.
    expect(outputs.join('\n')).not.toContain(CANARY);
  });

  it('counts secrets by provider, config name and key id, names the plaintext ones, and exits 2', async () => {
    const run = await audit(['--endpoints', etcd.endpoint]);
    expect(run.code).toBe(2);
    expect(run.stdout).toMatch(/etcd-audit: 13 objects at revision \d+ \(secrets: 13\)/);
    const row = (provider: string, name: string, keyId: string, count: number): RegExp =>
      new RegExp(`^secrets +${provider.replace(/[()]/g, '\\$&')} +${name} +${keyId} +${count}$`, 'm');
    expect(run.stdout).toMatch(row('aescbc', 'key1', '-', 1));
    expect(run.stdout).toMatch(row('aesgcm', 'key2', '-', 1));
    expect(run.stdout).toMatch(row('secretbox', 'box1', '-', 1));
    expect(run.stdout).toMatch(row('kms-v1', 'azurekms', '-', 1));
    expect(run.stdout).toMatch(row('kms-v2', 'podvault', KEY_A, 3));
    expect(run.stdout).toMatch(row('kms-v2', 'podvault', KEY_B, 2));
    expect(run.stdout).toMatch(row('identity (plaintext protobuf)', '-', '-', 1));
    expect(run.stdout).toMatch(row('identity (plaintext json)', '-', '-', 1));
    expect(run.stdout).toMatch(row('unknown (unrecognised)', '-', '-', 1));
    expect(run.stdout).toMatch(row('unknown (bad-kms-v2-envelope)', '-', '-', 1));
    expect(run.stdout).toMatch(/Plaintext: rewrite each .*\(2\):\n {2}secrets default\/plain-json {2}\(json\)\n {2}secrets default\/plain-protobuf {2}\(protobuf\)/);
    expect(run.stdout).toMatch(/Unknown format \(2\):\n {2}secrets team-c\/broken-kms2 {2}\(bad-kms-v2-envelope\)\n {2}secrets team-c\/garbage {2}\(unrecognised\)/);
    expect(run.stdout).toMatch(/Result: 2 plaintext \(exit 2\)/);
    expect(run.stderr).toBe('');
  });

  it('--json gives the same counts for machines, with several resources', async () => {
    const run = await audit(['--endpoints', etcd.endpoint, '--resources', 'secrets,configmaps', '--json']);
    expect(run.code).toBe(2);
    const report = JSON.parse(run.stdout) as {
      objects: Record<string, number>;
      total: number;
      groups: { resource: string; provider: string; configName?: string; keyId?: string; encoding?: string; count: number }[];
      plaintext: { resource: string; namespace: string; name: string }[];
      unknown: unknown[];
      verdict: string;
      exitCode: number;
      revision: string;
    };
    expect(report.objects).toEqual({ secrets: 13, configmaps: 2 });
    expect(report.total).toBe(15);
    expect(report.groups).toContainEqual({ resource: 'secrets', provider: 'kms-v2', configName: 'podvault', keyId: KEY_A, count: 3 });
    expect(report.groups).toContainEqual({ resource: 'configmaps', provider: 'kms-v2', configName: 'podvault', keyId: KEY_A, count: 1 });
    expect(report.groups).toContainEqual({ resource: 'configmaps', provider: 'identity', encoding: 'protobuf', count: 1 });
    expect(report.groups.reduce((n, g) => n + g.count, 0)).toBe(15);
    expect(report.plaintext.map((o) => `${o.resource} ${o.namespace}/${o.name}`)).toEqual([
      'secrets default/plain-json',
      'secrets default/plain-protobuf',
      'configmaps default/settings',
    ]);
    expect(report.unknown).toHaveLength(2);
    expect(report).toMatchObject({ verdict: 'plaintext', exitCode: 2 });
    expect(report.revision).toMatch(/^\d+$/);
  });

  it('exits 0 when everything is encrypted, and --expect-key-id holds it to one key', async () => {
    const clean = await audit(['--endpoints', etcd.endpoint, '--prefix', '/clean']);
    expect(clean.code).toBe(0);
    expect(clean.stdout).toMatch(/Result: no plaintext or unknown values \(exit 0\)/);
    const expected = await audit(['--endpoints', etcd.endpoint, '--prefix', '/clean', '--expect-key-id', KEY_A]);
    expect(expected.code).toBe(0);
    expect(expected.stdout).toContain(`Result: every object is under key id ${KEY_A} (exit 0)`);
    const other = await audit(['--endpoints', etcd.endpoint, '--prefix', '/clean', '--expect-key-id', KEY_B]);
    expect(other.code).toBe(4);
    expect(other.stdout).toMatch(/Result: 5 under another key \(exit 4\)/);
  });

  it('after a rotation, --expect-key-id lists what still needs kubectl replace (exit 4)', async () => {
    const run = await audit(['--endpoints', etcd.endpoint, '--prefix', '/rotating/', '--expect-key-id', KEY_B, '--json']);
    expect(run.code).toBe(4);
    const report = JSON.parse(run.stdout) as { otherKey: { namespace: string; name: string; provider: string; keyId?: string }[]; verdict: string };
    expect(report.otherKey).toEqual([
      { resource: 'secrets', namespace: 'ns', name: 'cbc', provider: 'aescbc', configName: 'key1' },
      { resource: 'secrets', namespace: 'ns', name: 'old', provider: 'kms-v2', configName: 'podvault', keyId: KEY_A },
    ]);
    expect(report.verdict).toBe('otherKey');
    const table = await audit(['--endpoints', etcd.endpoint, '--prefix', '/rotating', '--expect-key-id', KEY_B]);
    expect(table.stdout).toMatch(/Not under key id .*: rewrite each \(kubectl replace\) \(2\):\n {2}secrets ns\/cbc {2}\(aescbc key1\)\n {2}secrets ns\/old {2}\(kms-v2 podvault /);
  });

  it('exits 3 for a value of no known format, and 2 wins over 3 and 4', async () => {
    expect((await audit(['--endpoints', etcd.endpoint, '--prefix', '/unknown'])).code).toBe(3);
    expect((await audit(['--endpoints', etcd.endpoint, '--expect-key-id', KEY_A])).code).toBe(2);
  });

  it('reads in pages at one revision: pages of 7 count what pages of 500 count', async () => {
    const [big, small] = await Promise.all([
      audit(['--endpoints', etcd.endpoint, '--prefix', '/many', '--json']),
      audit(['--endpoints', etcd.endpoint, '--prefix', '/many', '--json', '--page-size', '7']),
    ]);
    const counts = (run: Run): unknown => (JSON.parse(run.stdout) as { groups: unknown }).groups;
    expect(counts(big)).toEqual([
      { resource: 'secrets', provider: 'aescbc', configName: 'k', count: 400 },
      { resource: 'secrets', provider: 'kms-v2', configName: 'p', keyId: KEY_A, count: 800 },
    ]);
    expect(counts(small)).toEqual(counts(big));
  });

  it('a page larger than --max-page-bytes is read as smaller pages; one value over it fails with exit 1', async () => {
    const run = await audit(['--endpoints', etcd.endpoint, '--prefix', '/big', '--max-page-bytes', '1Mi', '--json']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect((JSON.parse(run.stdout) as { total: number }).total).toBe(6);
    const huge = await audit(['--endpoints', etcd.endpoint, '--prefix', '/huge', '--max-page-bytes', '1Mi']);
    expect(huge.code).toBe(1);
    expect(huge.stderr).toMatch(/^podvault: etcd at http:\/\/127\.0\.0\.1:\d+: one value is larger than --max-page-bytes \(1048576 bytes\); raise it\n$/);
    expect((await audit(['--endpoints', etcd.endpoint, '--prefix', '/huge', '--json'])).code).toBe(0);
  });

  it('--progress writes counts to stderr, never to the report', async () => {
    const run = await audit(['--endpoints', etcd.endpoint, '--prefix', '/many', '--page-size', '100', '--progress', '--json']);
    expect(run.code).toBe(0);
    expect(run.stderr).toMatch(/^etcd-audit: secrets: 100 objects read \(100 in all\)…$/m);
    expect(() => JSON.parse(run.stdout) as unknown).not.toThrow();
  });

  it('an unreachable etcd and bad flags fail with exit 1 and one clear line, no stack trace', async () => {
    const down = await audit(['--endpoints', '127.0.0.1:1', '--dial-timeout', '1s']);
    expect(down.code).toBe(1);
    expect(down.stderr).toBe('podvault: cannot reach etcd at http://127.0.0.1:1: connection refused (is etcd listening there?)\n');
    const missing = await audit(['--endpoints', etcd.endpoint.replace('http:', 'https:'), '--cacert', '/nonexistent/ca.pem']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe('podvault: --cacert: cannot read "/nonexistent/ca.pem" (ENOENT)\n');
    const half = await audit(['--endpoints', etcd.endpoint, '--cert', '/x.pem']);
    expect(half.stderr).toBe('podvault: --cert and --key go together: give both or neither\n');
    const resource = await audit(['--endpoints', etcd.endpoint, '--resources', 'secrets,../x']);
    expect(resource.code).toBe(1);
    expect(resource.stderr).toMatch(/--resources: "\.\.\/x" is not a resource name/);
    for (const run of [down, missing, half, resource]) expect(run.stderr).not.toMatch(/\n\s+at /);
  });
});

describe('podvault etcd-audit over TLS with client certificates', () => {
  const ca = createTestCa('podvault etcd-audit test CA');
  const otherCa = createTestCa('another CA');
  let etcd: EtcdServer;
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'podvault-etcd-tls-'));
    const server = issueEtcdCert(ca, 'etcd', ['127.0.0.1']);
    const client = issueEtcdCert(ca, 'root');
    await writeFile(join(dir, 'ca.pem'), ca.certPem);
    await writeFile(join(dir, 'other-ca.pem'), otherCa.certPem);
    await writeFile(join(dir, 'client.pem'), client.certPem);
    await writeFile(join(dir, 'client-key.pem'), client.keyPem, { mode: 0o600 });
    etcd = await startEtcd({ tls: { caPem: ca.certPem, certPem: server.certPem, keyPem: server.keyPem, clientCertAuth: true } });
    const writer = new Etcd3({
      hosts: etcd.endpoint,
      credentials: { rootCertificate: Buffer.from(ca.certPem), certChain: Buffer.from(client.certPem), privateKey: Buffer.from(client.keyPem) },
    });
    try {
      await writer.put('/registry/secrets/default/tls-plain').value(Buffer.concat([Buffer.from('k8s\0'), canary]));
      await writer.put('/registry/secrets/default/tls-kms').value(kmsV2('podvault', KEY_A));
    } finally {
      writer.close();
    }
  }, 60_000);

  afterAll(async () => {
    await etcd?.stop();
    await rm(dir, { recursive: true, force: true });
    expect(outputs.join('\n')).not.toContain(CANARY);
  });

  it('reads with --cacert, --cert and --key as etcdctl names them', async () => {
    const run = await audit(['--endpoints', etcd.endpoint, '--cacert', join(dir, 'ca.pem'), '--cert', join(dir, 'client.pem'), '--key', join(dir, 'client-key.pem'), '--json']);
    expect(run.code).toBe(2);
    expect((JSON.parse(run.stdout) as { total: number }).total).toBe(2);
    // A bare host:port with TLS files is https, as with etcdctl.
    const bare = await audit(['--endpoints', etcd.endpoint.replace('https://', ''), '--cacert', join(dir, 'ca.pem'), '--cert', join(dir, 'client.pem'), '--key', join(dir, 'client-key.pem')]);
    expect(bare.code).toBe(2);
  });

  it('says which side of TLS failed: a server the CA did not sign, no client certificate', async () => {
    const wrongCa = await audit(['--endpoints', etcd.endpoint, '--cacert', join(dir, 'other-ca.pem'), '--cert', join(dir, 'client.pem'), '--key', join(dir, 'client-key.pem'), '--dial-timeout', '2s']);
    expect(wrongCa.code).toBe(1);
    expect(wrongCa.stderr).toMatch(/^podvault: cannot reach etcd at https:\/\/127\.0\.0\.1:\d+: its TLS certificate is not signed by --cacert\n$/);
    const noClient = await audit(['--endpoints', etcd.endpoint, '--cacert', join(dir, 'ca.pem'), '--dial-timeout', '2s']);
    expect(noClient.code).toBe(1);
    expect(noClient.stderr).toMatch(/^podvault: cannot reach etcd at https:\/\/127\.0\.0\.1:\d+: it refused our client certificate/);
  });
});
