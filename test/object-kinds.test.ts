import { createPrivateKey, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { certificateChain, pfx } from './support/certs.js';
import { formatObject } from '../src/providers/azure/object-fetchers.js';
import { parseAzureParameters } from '../src/providers/azure/parameters.js';
import { CLIENT_ID, isRoot, objectsParameter, rpcError, startHarness } from './support/harness.js';
import type { Harness, ObjectSpec } from './support/harness.js';

/**
 * The files each object kind becomes, byte for byte. Every expected value is computed here with
 * Node's crypto from the material the test itself generated, not with podvault's code.
 */
describe.skipIf(!isRoot)('every object kind the Azure provider mounts, same bytes', () => {
  let h: Harness;
  const chain = certificateChain();
  const pem = (der: Buffer): string => new X509Certificate(der).toString();
  const pkcs8 = (keyPem: string): string => createPrivateKey(keyPem).export({ type: 'pkcs8', format: 'pem' }).toString();
  const keys = {
    rsa: generateKeyPairSync('rsa', { modulusLength: 2048 }),
    p256: generateKeyPairSync('ec', { namedCurve: 'P-256' }),
    p384: generateKeyPairSync('ec', { namedCurve: 'P-384' }),
    p521: generateKeyPairSync('ec', { namedCurve: 'P-521' }),
  };
  const bundle = pfx(chain.leaf.key, [chain.root, chain.leaf, chain.intermediate]); // scrambled on purpose
  const pemBundle = `${pkcs8(chain.leaf.keyPem)}${pem(chain.root.der)}${pem(chain.leaf.der)}`;

  beforeAll(async () => {
    h = await startHarness();
    const store = h.vault.store;
    store.putClient({ clientId: CLIENT_ID, clientSecret: 'client-secret-value-0001', managedIdentity: false, read: ['*'] });
    for (const [name, pair] of Object.entries(keys)) store.putKey(`key-${name}`, pair.publicKey.export({ format: 'jwk' }));
    store.putCertificate('tls-pfx', { cer: chain.leaf.der, secretValue: bundle.toString('base64'), contentType: 'application/x-pkcs12' });
    store.putCertificate('tls-pem', { cer: chain.leaf.der, secretValue: pemBundle, contentType: 'application/x-pem-file' });
    store.setSecret('history', 'v1');
    store.setSecret('history', 'v2');
    store.setSecret('history', 'v3');
  });
  afterAll(async () => {
    await h?.close();
  });

  async function mount(objects: ObjectSpec[]): Promise<{ read: (f: string) => Promise<Buffer>; list: (d: string) => Promise<string[]>; done: () => Promise<void> }> {
    const name = `k${Math.random().toString(36).slice(2, 9)}`;
    await h.writeClass(name, h.vaultParameters(objects));
    const v = await h.volume({ className: name });
    await h.client.publish(v.request);
    return {
      read: (f) => readFile(join(v.targetPath, f)),
      list: async (d) => (await readdir(join(v.targetPath, d))).sort(),
      done: () => h.client.unpublish({ volumeId: v.volumeId, targetPath: v.targetPath }),
    };
  }

  it('key: the public key as a PKIX PUBLIC KEY PEM, for RSA and EC P-256/384/521', async () => {
    const m = await mount(Object.keys(keys).map((k) => ({ objectName: `key-${k}`, objectType: 'key' })));
    for (const [name, pair] of Object.entries(keys)) {
      expect((await m.read(`key-${name}`)).toString()).toBe(pair.publicKey.export({ type: 'spki', format: 'pem' }).toString());
    }
    await m.done();
  });

  it('cert: the leaf certificate as a CERTIFICATE PEM, no chain', async () => {
    const m = await mount([{ objectName: 'tls-pfx', objectType: 'cert' }]);
    expect((await m.read('tls-pfx')).toString()).toBe(pem(chain.leaf.der));
    await m.done();
  });

  it('a secret backing a PKCS#12 certificate: private key (PKCS#8) then certificates leaf → intermediate → root', async () => {
    const m = await mount([{ objectName: 'tls-pfx' }]);
    const expected = pkcs8(chain.leaf.keyPem) + pem(chain.leaf.der) + pem(chain.intermediate.der) + pem(chain.root.der);
    expect((await m.read('tls-pfx')).toString()).toBe(expected);
    await m.done();
  });

  it('objectFormat pfx keeps the stored base64 PFX; with objectEncoding base64 writes the binary PFX', async () => {
    const m = await mount([
      { objectName: 'tls-pfx', objectFormat: 'pfx', objectAlias: 'tls.pfx.b64' },
      { objectName: 'tls-pfx', objectFormat: 'pfx', objectEncoding: 'base64', objectAlias: 'tls.pfx' },
    ]);
    expect((await m.read('tls.pfx.b64')).toString()).toBe(bundle.toString('base64'));
    expect((await m.read('tls.pfx')).equals(bundle)).toBe(true);
    await m.done();
  });

  it('a secret backing a PEM certificate is written as stored', async () => {
    const m = await mount([{ objectName: 'tls-pem' }]);
    expect((await m.read('tls-pem')).toString()).toBe(pemBundle);
    await m.done();
  });

  it('objectVersionHistory: a directory with the N most recent versions, 0 the newest', async () => {
    const m = await mount([{ objectName: 'history', objectVersionHistory: '2' }]);
    expect(await m.list('history')).toEqual(['0', '1']);
    expect((await m.read('history/0')).toString()).toBe('v3');
    expect((await m.read('history/1')).toString()).toBe('v2');
    await m.done();
  });

  it('objectVersion latest with objectVersionHistory starts at the newest, as the provider\'s getLatestNKeyVaultObjects does', async () => {
    const m = await mount([{ objectName: 'history', objectVersion: 'latest', objectVersionHistory: '2' }]);
    expect(await m.list('history')).toEqual(['0', '1']);
    expect((await m.read('history/0')).toString()).toBe('v3');
    expect((await m.read('history/1')).toString()).toBe('v2');
    await m.done();
  });

  it('objectVersion latest without a history is a version id asked of the vault, as upstream passes it to GetSecret', async () => {
    const name = 'latest-no-history';
    await h.writeClass(name, h.vaultParameters([{ objectName: 'history', objectVersion: 'latest' }]));
    const err = await rpcError(h.client.publish((await h.volume({ className: name })).request));
    expect(err.code).toBe(status.NOT_FOUND);
    expect(h.vault.vaultLog.some((r) => r.path.startsWith('/secrets/history/latest'))).toBe(true);
  });

  it('a disabled certificate gives a clear error', async () => {
    h.vault.store.setEnabled('certificates', 'tls-pem', undefined, false);
    const name = 'disabled-cert';
    await h.writeClass(name, h.vaultParameters([{ objectName: 'tls-pem', objectType: 'cert' }]));
    const err = await rpcError(h.client.publish((await h.volume({ className: name })).request));
    expect(err.code).toBe(status.FAILED_PRECONDITION);
    expect(err.details).toMatch(/cert "tls-pem": HTTP 403: the object is disabled/);
  });
});

describe.skipIf(!isRoot)('expired objects, and fetches shared between pods', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({}, { latencyMs: 150 });
    await h.writeClass('user', h.vaultParameters([{ objectName: 'db-user' }]));
  });
  afterAll(async () => {
    await h?.close();
  });

  it('an expired secret gives a clear error', async () => {
    h.vault.store.setSecret('db-expired', 'x');
    h.vault.store.setExpiry('secrets', 'db-expired', undefined, Math.floor(Date.now() / 1000) - 60);
    await h.writeClass('expired', h.vaultParameters([{ objectName: 'db-expired' }]));
    const err = await rpcError(h.client.publish((await h.volume({ className: 'expired' })).request));
    expect(err.code).toBe(status.FAILED_PRECONDITION);
    expect(err.details).toMatch(/secret "db-expired": HTTP 403: the object is expired in Key Vault/);
  });

  it('20 pods publishing the same class at once cost one vault request per object, shared in flight', async () => {
    const warm = await h.volume({ className: 'user' });
    await h.client.publish(warm.request); // token first
    const before = h.vault.requests.secret ?? 0;
    const volumes = await Promise.all(Array.from({ length: 20 }, () => h.volume({ className: 'user' })));
    await Promise.all(volumes.map((v) => h.client.publish(v.request)));
    expect((h.vault.requests.secret ?? 0) - before).toBe(1);
    for (const v of [warm, ...volumes]) {
      expect((await readFile(join(v.targetPath, 'db-user'))).toString()).toMatch(/^app/);
      await h.client.unpublish({ volumeId: v.volumeId, targetPath: v.targetPath });
    }
  });

  it('never shares a fetch across identities', async () => {
    h.vault.store.putClient({ clientId: 'second-app', clientSecret: 'second-secret', managedIdentity: false, read: ['db-*'] });
    const before = h.vault.requests.secret ?? 0;
    const a = await h.volume({ className: 'user' });
    const b = await h.volume({ className: 'user', secrets: { clientid: 'second-app', clientsecret: 'second-secret' } });
    await Promise.all([h.client.publish(a.request), h.client.publish(b.request)]);
    expect((h.vault.requests.secret ?? 0) - before).toBe(2);
    for (const v of [a, b]) await h.client.unpublish({ volumeId: v.volumeId, targetPath: v.targetPath });
  });
});

describe('objectEncoding checks of vault-supplied text run in linear time', () => {
  it('refuses a base64 value of many newlines and one stray byte at once (was quadratic: 400 K took minutes)', async () => {
    const object = parseAzureParameters({ keyvaultName: 'kv-test', tenantId: 'tenant', objects: objectsParameter([{ objectName: 'x', objectEncoding: 'base64' }]) }).objects[0]!;
    const raw = { version: '1', text: `QUJD${'\n'.repeat(400_000)}!`, certificateBacked: false };
    await expect(formatObject(raw, object)).rejects.toMatchObject({ kind: 'invalid-argument', message: 'objectEncoding base64, but the stored value is not base64' });
    expect((await formatObject({ ...raw, text: 'QUJD\r\nREVG==\n \t' }, object)).toString()).toBe('ABCDEF');
  });
});
