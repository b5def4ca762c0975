import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildKmsConfig } from '../src/kms/kms-config.js';
import type { KmsFlags } from '../src/kms/kms-config.js';
import { chooseIdentity } from '../src/kms/kms-identity.js';
import { kmsKeyId, parseKeyId, versionOf } from '../src/kms/key-ref.js';
import { parseListenAddress } from '../src/kms/listen-address.js';
import { isFqdn } from '../src/kms/envelope.js';

describe('kms-plugin configuration', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'podvault-kms-config-'));
    await writeFile(join(dir, 'sp.json'), JSON.stringify({ cloud: 'AzureUSGovernmentCloud', tenantId: 't-1', aadClientId: 'c-1', aadClientSecret: 'shh-Zx81', subscriptionId: 's' }));
    await writeFile(join(dir, 'mi.json'), JSON.stringify({ cloud: 'AzurePublicCloud', useManagedIdentityExtension: true, userAssignedIdentityID: 'mi-client', aadClientSecret: 'ignored-when-mi' }));
    await writeFile(join(dir, 'broken.json'), '{"aadClientSecret": "shh-Zx81", oops');
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const base: KmsFlags = { logLevel: 'info' };

  it.each([
    ['https://kv1.vault.azure.net/keys/kek', { vaultUrl: 'https://kv1.vault.azure.net', name: 'kek' }],
    ['https://kv1.vault.azure.net/keys/kek/', { vaultUrl: 'https://kv1.vault.azure.net', name: 'kek' }],
    ['https://kv1.vault.azure.net/keys/kek/0123abcd', { vaultUrl: 'https://kv1.vault.azure.net', name: 'kek', version: '0123abcd' }],
    ['https://127.0.0.1:8443/keys/kek', { vaultUrl: 'https://127.0.0.1:8443', name: 'kek' }],
  ])('--key-id %s', (text, expected) => {
    expect(parseKeyId(text)).toEqual(expected);
  });

  it.each(['http://kv1.vault.azure.net/keys/kek', 'https://kv1.vault.azure.net/secrets/kek', 'https://kv1.vault.azure.net/keys/k_e_k', 'https://kv1.vault.azure.net/keys/kek/v1/extra', 'https://kv1.vault.azure.net/keys/kek?x=1', 'not a url'])('refuses --key-id %s', (text) => {
    expect(() => parseKeyId(text)).toThrow(/--key-id/);
  });

  it('the Azure plugin\'s key flags, in azure.json\'s cloud (and --managed-hsm)', async () => {
    const gov = await buildKmsConfig({ ...base, keyvaultName: 'KV1', keyName: 'kek', keyVersion: 'abc123', configFilePath: join(dir, 'sp.json') }, {});
    expect(gov.key).toEqual({ vaultUrl: 'https://kv1.vault.usgovcloudapi.net', name: 'kek', version: 'abc123' });
    expect(gov.verifyChallengeResource).toBe(true);
    const hsm = await buildKmsConfig({ ...base, keyvaultName: 'hsm1', keyName: 'kek', keyVersion: '', managedHsm: true, configFilePath: join(dir, 'mi.json') }, {});
    expect(hsm.key).toEqual({ vaultUrl: 'https://hsm1.managedhsm.azure.net', name: 'kek' });
    await expect(buildKmsConfig({ ...base, keyId: 'https://a.vault.azure.net/keys/k', keyName: 'k', configFilePath: join(dir, 'sp.json') }, {})).rejects.toThrow(/not both/);
    await expect(buildKmsConfig({ ...base, configFilePath: join(dir, 'sp.json') }, {})).rejects.toThrow(/no key/);
  });

  it('azure.json picks the identity in the Azure plugin\'s order; errors never quote the file', async () => {
    expect((await buildKmsConfig({ ...base, keyId: 'https://a.vault.azure.net/keys/k', configFilePath: join(dir, 'mi.json') }, {})).identity).toEqual({ kind: 'managed-identity', clientId: 'mi-client' });
    expect((await buildKmsConfig({ ...base, keyId: 'https://a.vault.azure.net/keys/k', configFilePath: join(dir, 'sp.json') }, {})).identity).toMatchObject({ kind: 'service-principal-secret', tenantId: 't-1', clientId: 'c-1' });
    const err = await buildKmsConfig({ ...base, keyId: 'https://a.vault.azure.net/keys/k', configFilePath: join(dir, 'broken.json') }, {}).catch((e: Error) => e);
    expect((err as Error).message).toMatch(/not valid JSON/);
    expect((err as Error).message).not.toContain('shh-Zx81');
    expect(chooseIdentity(undefined, { useManagedIdentity: false }, { AZURE_CLIENT_ID: 'wi', AZURE_TENANT_ID: 't', AZURE_FEDERATED_TOKEN_FILE: '/var/run/token' })).toEqual({ kind: 'workload-identity', clientId: 'wi', tenantId: 't', tokenFile: '/var/run/token' });
    expect(chooseIdentity(undefined, { useManagedIdentity: true }, {})).toEqual({ kind: 'managed-identity' });
    expect(() => chooseIdentity(undefined, { useManagedIdentity: false }, {})).toThrow(/no identity/);
  });

  it.each([
    ['unix:///var/run/kms.sock', { kind: 'path', path: '/var/run/kms.sock' }],
    ['/var/run/kms.sock', { kind: 'path', path: '/var/run/kms.sock' }],
    ['@podvault-kms', { kind: 'abstract', name: 'podvault-kms' }],
    ['unix:///@podvault-kms', { kind: 'abstract', name: 'podvault-kms' }],
  ])('--listen %s', (text, expected) => {
    expect(parseListenAddress(text)).toEqual(expected);
  });

  it('refuses relative sockets, TCP and the Azure plugin\'s proxy mode', async () => {
    expect(() => parseListenAddress('kms.sock')).toThrow(/--listen/);
    expect(() => parseListenAddress('tcp://127.0.0.1:1')).toThrow(/--listen/);
    await expect(buildKmsConfig({ ...base, keyId: 'https://a.vault.azure.net/keys/k', useManagedIdentity: true, proxyMode: true }, {})).rejects.toThrow(/--proxy-mode/);
  });

  it('key_id is the SHA-256 of the versioned key id; versions of another key or vault are not ours', () => {
    const ref = parseKeyId('https://kv1.vault.azure.net/keys/kek');
    expect(kmsKeyId('https://kv1.vault.azure.net/keys/kek/v1')).toMatch(/^[0-9a-f]{64}$/);
    expect(versionOf(ref, 'https://kv1.vault.azure.net/keys/kek/v1')).toBe('v1');
    expect(versionOf(ref, 'https://kv1.vault.azure.net/keys/kek2/v1')).toBeUndefined();
    expect(versionOf(ref, 'https://kv2.vault.azure.net/keys/kek/v1')).toBeUndefined();
    expect(versionOf(ref, 'https://kv1.vault.azure.net/keys/kek/v1/../x')).toBeUndefined();
  });

  it.each([['key-id.kms.podvault.dev', true], ['a.b', true], ['nodots', false], ['Upper.case', false], ['-bad.example.com', false], ['x'.repeat(64) + '.com', false]])('annotation key %s is an FQDN: %s', (key, ok) => {
    expect(isFqdn(key)).toBe(ok);
  });
});
