import { constants, createPublicKey, publicEncrypt, randomBytes } from 'node:crypto';
import { ClientSecretCredential } from '@azure/identity';
import { CryptographyClient, KeyClient } from '@azure/keyvault-keys';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDevVault } from '../src/devvault/server.js';
import type { DevVault } from '../src/devvault/server.js';
import { parseSeed } from '../src/devvault/seed.js';

/**
 * dev-vault's key crypto through the real @azure/keyvault-keys SDK: wrap/unwrap/encrypt/decrypt
 * with real RSA keys, versions and rotation, and the roles that decide who may do what.
 */
describe('dev-vault key operations, through CryptographyClient', () => {
  let vault: DevVault;
  const seed = parseSeed(
    `
clients:
  - clientId: kms-wrapper
    clientSecret: wrapper-secret-0001
    read: []
    crypto: [{ role: crypto-service-encryption-user, keys: ["kek"] }]
  - clientId: crypto-user
    clientSecret: crypto-user-secret-0002
    read: []
    crypto: [{ role: crypto-user, keys: ["kek", "kek-3k"] }]
  - clientId: officer
    clientSecret: officer-secret-0003
    crypto: [{ role: crypto-officer }]
  - clientId: reader-only
    clientSecret: reader-secret-0004
keys:
  - name: kek
    versions: 2
  - name: kek-3k
    size: 3072
`,
    'test seed',
  );

  beforeAll(async () => {
    vault = await startDevVault({ seed });
  });
  afterAll(async () => {
    await vault?.close();
  });

  const options = (): { tlsOptions: { ca: string }; retryOptions: { maxRetries: number }; disableChallengeResourceVerification: boolean } => ({
    tlsOptions: { ca: vault.caPem },
    retryOptions: { maxRetries: 0 },
    disableChallengeResourceVerification: true,
  });
  const credential = (clientId: string, secret: string): ClientSecretCredential =>
    new ClientSecretCredential(vault.tenantId, clientId, secret, { authorityHost: vault.url, disableInstanceDiscovery: true, tlsOptions: { ca: vault.caPem } });
  const crypto = (keyId: string, clientId: string, secret: string): CryptographyClient => new CryptographyClient(keyId, credential(clientId, secret), options());
  const versions = (name: string): string[] => (vault.store.list('keys', name) ?? []).map((v) => v.version);

  it('wrapKey/unwrapKey with RSA-OAEP-256: a Crypto Service Encryption User round-trips a 32-byte seed under a pinned version', async () => {
    const [, current] = versions('kek');
    const client = crypto(`${vault.url}/keys/kek/${current}`, 'kms-wrapper', 'wrapper-secret-0001');
    const seedBytes = randomBytes(32);
    const wrapped = await client.wrapKey('RSA-OAEP-256', seedBytes);
    expect(wrapped.result).toHaveLength(256);
    expect(Buffer.from(wrapped.result).equals(seedBytes)).toBe(false);
    const unwrapped = await client.unwrapKey('RSA-OAEP-256', wrapped.result);
    expect(Buffer.from(unwrapped.result).equals(seedBytes)).toBe(true);
  });

  it('the wrapped bytes are real RSA-OAEP-256 under the version\'s public key (built here with node:crypto)', async () => {
    const [old] = versions('kek');
    const jwk = vault.store.get('keys', 'kek', old)?.jwk;
    const seedBytes = randomBytes(32);
    const ours = publicEncrypt({ key: createPublicKey({ key: jwk!, format: 'jwk' }), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, seedBytes);
    const client = crypto(`${vault.url}/keys/kek/${old}`, 'kms-wrapper', 'wrapper-secret-0001');
    expect(Buffer.from((await client.unwrapKey('RSA-OAEP-256', ours)).result).equals(seedBytes)).toBe(true);
  });

  it('a ciphertext of one version does not unwrap under another: Key Vault\'s 400 BadParameter', async () => {
    const [old, current] = versions('kek');
    const wrapped = await crypto(`${vault.url}/keys/kek/${old}`, 'kms-wrapper', 'wrapper-secret-0001').wrapKey('RSA-OAEP-256', randomBytes(32));
    await expect(crypto(`${vault.url}/keys/kek/${current}`, 'kms-wrapper', 'wrapper-secret-0001').unwrapKey('RSA-OAEP-256', wrapped.result)).rejects.toMatchObject({ statusCode: 400, code: 'BadParameter' });
  });

  it('encrypt/decrypt with RSA-OAEP-256, RSA-OAEP and RSA1_5 for a Crypto User, on a 3072-bit key', async () => {
    const client = crypto(`${vault.url}/keys/kek-3k/${versions('kek-3k')[0]}`, 'crypto-user', 'crypto-user-secret-0002');
    for (const algorithm of ['RSA-OAEP-256', 'RSA-OAEP', 'RSA1_5'] as const) {
      const plaintext = Buffer.from(`hello ${algorithm}`);
      const encrypted = await client.encrypt({ algorithm, plaintext });
      expect(encrypted.result).toHaveLength(384);
      const decrypted = await client.decrypt({ algorithm, ciphertext: encrypted.result });
      expect(Buffer.from(decrypted.result).toString()).toBe(`hello ${algorithm}`);
    }
  });

  it('a Crypto Service Encryption User may not encrypt or decrypt: 403 naming the data action', async () => {
    const client = crypto(`${vault.url}/keys/kek/${versions('kek')[1]}`, 'kms-wrapper', 'wrapper-secret-0001');
    await expect(client.encrypt({ algorithm: 'RSA-OAEP-256', plaintext: randomBytes(32) })).rejects.toMatchObject({ statusCode: 403, message: expect.stringContaining("Microsoft.KeyVault/vaults/keys/encrypt/action") });
    await expect(client.decrypt({ algorithm: 'RSA-OAEP-256', ciphertext: randomBytes(256) })).rejects.toMatchObject({ statusCode: 403, message: expect.stringContaining('keys/decrypt/action') });
  });

  it('an identity with read access but no crypto role may get the key, not wrap with it', async () => {
    const keyId = `${vault.url}/keys/kek/${versions('kek')[1]}`;
    const keys = new KeyClient(vault.url, credential('reader-only', 'reader-secret-0004'), options());
    expect((await keys.getKey('kek')).id).toBe(keyId);
    await expect(crypto(keyId, 'reader-only', 'reader-secret-0004').wrapKey('RSA-OAEP-256', randomBytes(32))).rejects.toMatchObject({ statusCode: 403, message: expect.stringContaining('keys/wrap/action') });
  });

  it('a Crypto Service Encryption User reads key metadata of its key only', async () => {
    const keys = new KeyClient(vault.url, credential('kms-wrapper', 'wrapper-secret-0001'), options());
    expect((await keys.getKey('kek')).key?.kty).toBe('RSA');
    await expect(keys.getKey('kek-3k')).rejects.toMatchObject({ statusCode: 403 });
  });

  it('rotateKey (Crypto Officer) adds a current version; a versionless id then wraps under it, old versions still unwrap', async () => {
    const [, before] = versions('kek');
    const oldClient = crypto(`${vault.url}/keys/kek/${before}`, 'kms-wrapper', 'wrapper-secret-0001');
    const secretSeed = randomBytes(32);
    const oldWrapped = await oldClient.wrapKey('RSA-OAEP-256', secretSeed);

    await expect(new KeyClient(vault.url, credential('kms-wrapper', 'wrapper-secret-0001'), options()).rotateKey('kek')).rejects.toMatchObject({ statusCode: 403 });
    const rotated = await new KeyClient(vault.url, credential('officer', 'officer-secret-0003'), options()).rotateKey('kek');
    expect(rotated.properties.version).not.toBe(before);
    expect(versions('kek')).toHaveLength(3);
    expect(rotated.key?.n).toHaveLength(256);

    const latest = new KeyClient(vault.url, credential('kms-wrapper', 'wrapper-secret-0001'), options());
    expect((await latest.getKey('kek')).properties.version).toBe(rotated.properties.version);
    const newWrapped = await crypto(`${vault.url}/keys/kek/${rotated.properties.version}`, 'kms-wrapper', 'wrapper-secret-0001').wrapKey('RSA-OAEP-256', secretSeed);
    expect(Buffer.from(newWrapped.result).equals(Buffer.from(oldWrapped.result))).toBe(false);
    expect(Buffer.from((await oldClient.unwrapKey('RSA-OAEP-256', oldWrapped.result)).result).equals(secretSeed)).toBe(true);
  });

  it('a disabled version refuses wrapKey with Key Vault\'s 403 KeyDisabled message; an unknown version is 404 KeyNotFound', async () => {
    const [first] = versions('kek');
    vault.store.setEnabled('keys', 'kek', first, false);
    try {
      const client = crypto(`${vault.url}/keys/kek/${first}`, 'crypto-user', 'crypto-user-secret-0002');
      await expect(client.wrapKey('RSA-OAEP-256', randomBytes(32))).rejects.toMatchObject({ statusCode: 403, message: expect.stringContaining('not allowed on a disabled key') });
    } finally {
      vault.store.setEnabled('keys', 'kek', first, true);
    }
    await expect(crypto(`${vault.url}/keys/kek/00000000000000000000000000000000`, 'crypto-user', 'crypto-user-secret-0002').unwrapKey('RSA-OAEP-256', randomBytes(256))).rejects.toMatchObject({ statusCode: 404, code: 'KeyNotFound' });
  });
});
