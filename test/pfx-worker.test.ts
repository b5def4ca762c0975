import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestCa } from '../src/devvault/test-ca.js';
import { pemBlocks } from '../src/util/pem.js';
import { MAX_PKCS12_BYTES, Pkcs12Converter } from '../src/untrusted/pkcs12-converter.js';
import forge from 'node-forge';
import { certificateChain, pfx, pfxDeclaringIterations, pfxWithEmptyBytesPassword } from './support/certs.js';
import { CLIENT_ID, isRoot, rpcError, startHarness } from './support/harness.js';
import type { Harness } from './support/harness.js';

/**
 * Finding 4: node-forge opening a PKCS#12 runs every key derivation the bundle declares; on the
 * serving thread 2.5 M MAC iterations stalled Probe and other pods' publishes for 6 s. Bundles
 * are now opened on a worker thread under an iteration cap and a time limit.
 */
const chain = certificateChain();
const good = pfx(chain.leaf.key, [chain.leaf, chain.intermediate, chain.root]);
/** Under a 10 M cap it is opened, and takes ~25 s of forge (9.9 M SHA-1 rounds): past any limit here. */
const slow = pfxDeclaringIterations(chain.leaf.key, [chain.leaf], { iterations: 9_900_000, algorithm: '3des', mac: true });

describe('the PKCS#12 converter worker', () => {
  const converter = new Pkcs12Converter({ maxIterations: 100_000, timeLimitMs: 5000 });
  afterAll(() => converter.close());

  it('converts a normal bundle: private key, then the chain leaf → root', async () => {
    const pem = await converter.convert(good, '');
    expect(pem.match(/-----BEGIN [A-Z ]+-----/g)).toEqual(['-----BEGIN PRIVATE KEY-----', ...Array(3).fill('-----BEGIN CERTIFICATE-----')]);
  });

  it.each([
    { what: 'MAC key derivation', algorithm: '3des', mac: true },
    { what: 'PKCS#12 PBE key derivation', algorithm: '3des', mac: false },
    { what: 'PBKDF2 key derivation', algorithm: 'aes256', mac: false },
  ] as const)('refuses a bundle whose $what asks for more iterations than the cap, before running them', async ({ what, algorithm, mac }) => {
    for (const iterations of [2_500_000, 2 ** 31 - 1]) {
      const bundle = pfxDeclaringIterations(chain.leaf.key, [chain.leaf], { iterations, algorithm, mac });
      await expect(converter.convert(bundle, '')).rejects.toMatchObject({
        kind: 'invalid-argument',
        message: `is refused: its ${what} asks for ${iterations} iterations, more than the 100000 this node allows (--pkcs12-max-iterations)`,
      });
    }
  });

  it('keeps the bundle\'s order when the chain cannot be completed; orders leaf-first only when it links up', async () => {
    const certsOf = async (bundle: Buffer) => pemBlocks(await converter.convert(bundle, ''), 'CERTIFICATE');
    // The intermediate is missing: root and leaf do not link, so they stay as the bundle has them.
    expect(await certsOf(pfx(chain.leaf.key, [chain.root, chain.leaf]))).toEqual([chain.root.der, chain.leaf.der]);
    // No root, but leaf and intermediate link up: leaf first.
    expect(await certsOf(pfx(chain.leaf.key, [chain.intermediate, chain.leaf]))).toEqual([chain.leaf.der, chain.intermediate.der]);
    // An unrelated certificate beside a complete chain: the bundle's order too.
    const other = certificateChain().root;
    expect(await certsOf(pfx(chain.leaf.key, [chain.root, other, chain.leaf, chain.intermediate]))).toEqual([chain.root.der, other.der, chain.leaf.der, chain.intermediate.der]);
    // The part that links is not pulled to the front either (was: leaf, intermediate, then the rest).
    expect(await certsOf(pfx(chain.leaf.key, [chain.intermediate, chain.leaf, other]))).toEqual([chain.intermediate.der, chain.leaf.der, other.der]);
  });

  it('terminates a bundle over the time limit, keeps the event loop free meanwhile, and serves the next with a fresh worker', async () => {
    const lenient = new Pkcs12Converter({ maxIterations: 10_000_000, timeLimitMs: 3000 });
    try {
      const order: string[] = [];
      const stalled = lenient.convert(slow, '').then(
        () => order.push('slow converted'),
        (err: Error) => order.push(`slow: ${err.message}`),
      );
      // While forge grinds, this thread still runs timers: a stalled loop would run them after.
      for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 10));
      order.push('timers ran');
      await stalled;
      expect(order).toEqual(['timers ran', 'slow: is refused: the PKCS#12 bundle did not open within 3000 ms (--pkcs12-time-limit)']);
      expect(await lenient.convert(good, '')).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    } finally {
      await lenient.close();
    }
  });

  it('refuses oversized input and a wrong password without a stack of forge text', async () => {
    await expect(converter.convert(Buffer.alloc(MAX_PKCS12_BYTES + 1), '')).rejects.toMatchObject({ kind: 'invalid-argument', message: expect.stringMatching(/more than the 262144 this node opens/) });
    await expect(converter.convert(good, 'not-the-password')).rejects.toMatchObject({ message: 'is not a PKCS#12 bundle that opens with its password' });
    await expect(converter.convert(Buffer.from('garbage'), '')).rejects.toMatchObject({ message: 'is not a PKCS#12 bundle that opens with its password' });
  });
});

describe.skipIf(!isRoot)('a hostile certificate-backed secret does not stall the node', () => {
  const HOSTILE_UID = '00000000-0000-4000-8000-0000000000aa';
  const huge = pfxDeclaringIterations(chain.leaf.key, [chain.leaf], { iterations: 20_000_000, algorithm: '3des', mac: true });
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ pkcs12MaxIterations: '10000000', pkcs12TimeLimit: '3s' });
    const store = h.vault.store;
    store.putClient({ clientId: CLIENT_ID, clientSecret: 'client-secret-value-0001', managedIdentity: false, read: ['*'] });
    store.putCertificate('pfx-huge', { cer: chain.leaf.der, secretValue: huge.toString('base64'), contentType: 'application/x-pkcs12' });
    store.putCertificate('pfx-slow', { cer: chain.leaf.der, secretValue: slow.toString('base64'), contentType: 'application/x-pkcs12' });
    store.putCertificate('pfx-good', { cer: chain.leaf.der, secretValue: good.toString('base64'), contentType: 'application/x-pkcs12' });
    for (const name of ['pfx-huge', 'pfx-slow', 'pfx-good', 'db-user']) await h.writeClass(name, h.vaultParameters([{ objectName: name }]));
    // A type-2 AzureIdentity whose certificate Secret is the hostile bundle: the same converter.
    await h.writeObjects('hostile-identity.yaml', [
      { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'hostile-pfx', namespace: 'default' }, data: { certificate: huge.toString('base64') } },
      { apiVersion: 'aadpodidentity.k8s.io/v1', kind: 'AzureIdentity', metadata: { name: 'hostile', namespace: 'default' }, spec: { type: 2, tenantID: h.vault.tenantId, clientID: 'sp-hostile', clientPassword: { name: 'hostile-pfx', namespace: 'default' } } },
      { apiVersion: 'aadpodidentity.k8s.io/v1', kind: 'AzureIdentityBinding', metadata: { name: 'hostile', namespace: 'default' }, spec: { azureIdentity: 'hostile', selector: 'hostile' } },
      { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'hostile-pod', namespace: 'default', uid: HOSTILE_UID, labels: { aadpodidbinding: 'hostile' } } },
    ]);
    await h.writeClass('via-hostile-identity', { ...h.vaultParameters([{ objectName: 'db-user' }]), usePodIdentity: 'true' });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('refuses a PFX whose MAC asks for more iterations than the cap, naming the object and the flag', async () => {
    const err = await rpcError(h.client.publish((await h.volume({ className: 'pfx-huge' })).request));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toMatch(/secret "pfx-huge": the certificate-backed secret is refused: its MAC key derivation asks for 20000000 iterations, more than the 10000000 this node allows \(--pkcs12-max-iterations\)/);
    expect((await h.client.probe()).ready?.value).toBe(true);
  });

  it('refuses a type-2 AzureIdentity whose certificate Secret asks for more iterations than the cap', async () => {
    const v = await h.volume({ pod: 'hostile-pod', uid: HOSTILE_UID, className: 'via-hostile-identity', secrets: {} });
    const err = await rpcError(h.client.publish(v.request));
    expect(err.code).toBe(status.FAILED_PRECONDITION);
    expect(err.details).toMatch(/AzureIdentity default\/hostile: Secret default\/hostile-pfx key certificate .* is refused: its MAC key derivation asks for 20000000 iterations, more than the 10000000 this node allows \(--pkcs12-max-iterations\)/);
    expect((await h.client.probe()).ready?.value).toBe(true);
  });

  it('while a slow PFX is opened, Probe and another pod\'s publish answer; the PFX is then refused and the next one opens', async () => {
    const order: string[] = [];
    const slowVolume = await h.volume({ className: 'pfx-slow' });
    const stalled = rpcError(h.client.publish(slowVolume.request)).then((e) => {
      order.push('slow refused');
      return e;
    });
    // Once the vault has served the bundle, the driver is opening it.
    for (let i = 0; i < 200 && !h.vault.vaultLog.some((r) => r.path.startsWith('/secrets/pfx-slow')); i++) await new Promise((r) => setTimeout(r, 10));
    expect((await h.client.probe()).ready?.value).toBe(true);
    order.push('probe');
    const other = await h.volume({ className: 'db-user' });
    await h.client.publish(other.request);
    order.push('other publish');
    expect(await readFile(join(other.targetPath, 'db-user'), 'utf8')).toBe('app');

    const err = await stalled;
    expect(order).toEqual(['probe', 'other publish', 'slow refused']);
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toMatch(/secret "pfx-slow": the certificate-backed secret is refused: the PKCS#12 bundle did not open within 3000 ms \(--pkcs12-time-limit\)/);

    const next = await h.volume({ className: 'pfx-good' });
    await h.client.publish(next.request);
    expect(await readFile(join(next.targetPath, 'pfx-good'), 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    for (const v of [other, next]) await h.client.unpublish({ volumeId: v.volumeId, targetPath: v.targetPath });
  });
});

describe.skipIf(!isRoot)('a type-2 identity\'s PEM certificate is rebuilt before the Azure SDK reads it', () => {
  let h: Harness;
  const identity = (name: string, certificate: string) => [
    { apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: 'default' }, data: { certificate: Buffer.from(certificate).toString('base64') } },
    { apiVersion: 'aadpodidentity.k8s.io/v1', kind: 'AzureIdentity', metadata: { name, namespace: 'default' }, spec: { type: 2, tenantID: h.vault.tenantId, clientID: 'sp-pem', clientPassword: { name, namespace: 'default' } } },
    { apiVersion: 'aadpodidentity.k8s.io/v1', kind: 'AzureIdentityBinding', metadata: { name, namespace: 'default' }, spec: { azureIdentity: name, selector: name } },
    { apiVersion: 'v1', kind: 'Pod', metadata: { name: `${name}-pod`, namespace: 'default', uid: `uid-${name}`, labels: { aadpodidbinding: name } } },
  ];
  const publish = async (name: string) => h.client.publish((await h.volume({ pod: `${name}-pod`, uid: `uid-${name}`, className: 'as-identity', secrets: {} })).request);
  beforeAll(async () => {
    h = await startHarness();
    const cert = createTestCa('client CA').issueServerCert(['sp-pem'], []);
    h.vault.store.putClient({ clientId: 'sp-pem', certificatePem: cert.certPem, managedIdentity: false, read: ['db-*'] });
    await h.writeObjects('pem-identities.yaml', [
      // As `openssl pkcs12 -nodes` prints it: attribute lines around the blocks.
      ...identity('good-pem', `Bag Attributes\n    localKeyID: 01\n${cert.keyPem}subject=CN = sp-pem\n${cert.certPem}`),
      // @azure/identity's /(-+BEGIN CERTIFICATE-+)…/ is quadratic on dashes: minutes for 1 MB.
      ...identity('dashes', `${'-'.repeat(1_000_000)}-----BEGIN CERTIFICATE-----`),
    ]);
    await h.writeClass('as-identity', { ...h.vaultParameters([{ objectName: 'db-user' }]), usePodIdentity: 'true' });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('a PEM key and certificate with text around them still sign in', async () => {
    await publish('good-pem');
  });

  it('a megabyte of dashes is refused at once instead of holding the serving thread', async () => {
    const err = await rpcError(publish('dashes'));
    expect(err.code).toBe(status.FAILED_PRECONDITION);
    expect(err.details).toMatch(/AzureIdentity default\/dashes: Secret default\/dashes key certificate .* holds no PEM CERTIFICATE block/);
    expect((await h.client.probe()).ready?.value).toBe(true);
  });
});

/**
 * Issue 9 item 1: Windows/CNG and Key Vault's own exports encode "no password" as zero bytes, not
 * as the BMPString of "" with its NUL terminator; Go's pkcs12 (the Azure provider) opens both.
 */
describe('a PKCS#12 whose empty password is encoded as zero bytes (Windows, Key Vault exports)', () => {
  const windows = pfxWithEmptyBytesPassword(chain.leaf.key, [chain.leaf, chain.intermediate, chain.root]);
  const forgeOpens = (pass: string | null): boolean => {
    try {
      forge.pkcs12.pkcs12FromAsn1(forge.asn1.fromDer(forge.util.createBuffer(windows.toString('binary'))), false, pass as string);
      return true;
    } catch {
      return false;
    }
  };
  const converter = new Pkcs12Converter({ maxIterations: 100_000, timeLimitMs: 5000 });
  afterAll(() => converter.close());

  it('the fixture really is one: it does not open with the two-NUL encoding, only with zero bytes', () => {
    expect(forgeOpens('')).toBe(false);
    expect(forgeOpens(null)).toBe(true);
  });

  it('opens with an empty password: private key, then the chain leaf → root', async () => {
    const pem = await converter.convert(windows, '');
    expect(pem.match(/-----BEGIN [A-Z ]+-----/g)).toEqual(['-----BEGIN PRIVATE KEY-----', ...Array(3).fill('-----BEGIN CERTIFICATE-----')]);
    expect(pemBlocks(pem, 'CERTIFICATE')).toEqual([chain.leaf.der, chain.intermediate.der, chain.root.der]);
  });

  it('a wrong password is still refused, and the iteration cap still holds on the retry', async () => {
    await expect(converter.convert(windows, 'not-the-password')).rejects.toMatchObject({ message: 'is not a PKCS#12 bundle that opens with its password' });
    const tight = new Pkcs12Converter({ maxIterations: 1000, timeLimitMs: 5000 });
    try {
      await expect(tight.convert(windows, '')).rejects.toMatchObject({ message: expect.stringMatching(/^is refused: its MAC key derivation asks for \d+ iterations/) });
    } finally {
      await tight.close();
    }
  });
});

describe.skipIf(!isRoot)('a zero-byte-password PFX mounts and signs in as upstream', () => {
  let h: Harness;
  const clientCert = createTestCa('client CA').issueServerCert(['sp-windows'], []);
  const clientIssued = { cert: forge.pki.certificateFromPem(clientCert.certPem), key: forge.pki.privateKeyFromPem(clientCert.keyPem) as forge.pki.rsa.PrivateKey, keyPem: clientCert.keyPem, der: Buffer.alloc(0) };
  const windows = pfxWithEmptyBytesPassword(chain.leaf.key, [chain.leaf, chain.intermediate, chain.root]);
  beforeAll(async () => {
    h = await startHarness();
    const store = h.vault.store;
    store.putClient({ clientId: CLIENT_ID, clientSecret: 'client-secret-value-0001', managedIdentity: false, read: ['*'] });
    store.putClient({ clientId: 'sp-windows', certificatePem: clientCert.certPem, managedIdentity: false, read: ['db-*'] });
    store.putCertificate('pfx-windows', { cer: chain.leaf.der, secretValue: windows.toString('base64'), contentType: 'application/x-pkcs12' });
    await h.writeClass('pfx-windows', h.vaultParameters([{ objectName: 'pfx-windows' }]));
    await h.writeObjects('windows-identity.yaml', [
      { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'windows-pfx', namespace: 'default' }, data: { certificate: pfxWithEmptyBytesPassword(clientIssued.key, [clientIssued]).toString('base64') } },
      { apiVersion: 'aadpodidentity.k8s.io/v1', kind: 'AzureIdentity', metadata: { name: 'windows', namespace: 'default' }, spec: { type: 2, tenantID: h.vault.tenantId, clientID: 'sp-windows', clientPassword: { name: 'windows-pfx', namespace: 'default' } } },
      { apiVersion: 'aadpodidentity.k8s.io/v1', kind: 'AzureIdentityBinding', metadata: { name: 'windows', namespace: 'default' }, spec: { azureIdentity: 'windows', selector: 'windows' } },
      { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'windows-pod', namespace: 'default', uid: 'uid-windows', labels: { aadpodidbinding: 'windows' } } },
    ]);
    await h.writeClass('via-windows-identity', { ...h.vaultParameters([{ objectName: 'db-user' }]), usePodIdentity: 'true' });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('a certificate-backed secret: private key, then the chain leaf → root', async () => {
    const v = await h.volume({ className: 'pfx-windows' });
    await h.client.publish(v.request);
    const pem = await readFile(join(v.targetPath, 'pfx-windows'), 'utf8');
    expect(pem).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(pemBlocks(pem, 'CERTIFICATE')).toEqual([chain.leaf.der, chain.intermediate.der, chain.root.der]);
    await h.client.unpublish({ volumeId: v.volumeId, targetPath: v.targetPath });
  });

  it('a type-2 AzureIdentity whose certificate Secret is such a PFX signs in', async () => {
    const v = await h.volume({ pod: 'windows-pod', uid: 'uid-windows', className: 'via-windows-identity', secrets: {} });
    await h.client.publish(v.request);
    expect(await readFile(join(v.targetPath, 'db-user'), 'utf8')).toBe('app');
    await h.client.unpublish({ volumeId: v.volumeId, targetPath: v.targetPath });
  });
});
