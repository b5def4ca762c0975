import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyVaultOnly } from '../src/providers/azure/vault-clients.js';
import { isRoot, rpcError, startHarness } from './support/harness.js';
import type { Harness } from './support/harness.js';

describe.skipIf(!isRoot)('a vault origin allowed with --allow-vault-uri cannot pick the token\'s audience', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
    await h.writeClass('app', h.vaultParameters([{ objectName: 'db-user' }]));
  });
  afterAll(async () => {
    await h?.close();
  });

  it('a 401 challenge asking for an ARM token is refused, and Entra ID is never asked for that scope', async () => {
    h.vault.setChallengeResource('https://management.azure.com');
    const v = await h.volume();
    const err = await rpcError(h.client.publish(v.request));
    expect(err.code).toBe(status.PERMISSION_DENIED);
    expect(err.details).toBe(
      `vault ${h.vault.url}: its authentication challenge asks for a token for resource "https://management.azure.com"; podvault asks tokens only for the Key Vault resource https://vault.azure.net`,
    );
    expect(h.vault.requests.challenge ?? 0).toBeGreaterThan(0);
    expect(h.vault.tokenScopes.filter((s) => s.includes('management.azure.com'))).toEqual([]);
    expect(h.vault.requests.token ?? 0).toBe(0);

    // The driver still serves, and an honest challenge gets the Key Vault token.
    h.vault.setChallengeResource(undefined);
    await h.client.publish(v.request);
    expect(await readFile(join(v.targetPath, 'db-user'), 'utf8')).toBe('app');
    expect(h.vault.tokenScopes).toEqual(['https://vault.azure.net/.default']);
    await h.client.unpublish({ volumeId: v.volumeId, targetPath: v.targetPath });
  });
});

describe('keyVaultOnly: the credential handed to the SDK clients', () => {
  const inner = { getToken: async () => ({ token: 't', expiresOnTimestamp: Date.now() + 3600_000 }) };
  const credential = keyVaultOnly(inner, 'https://vault.azure.net', 'https://v.example');

  it('passes the Key Vault scope through and refuses any other, quoting the hostile text safely', async () => {
    await expect(credential.getToken('https://vault.azure.net/.default')).resolves.toMatchObject({ token: 't' });
    await expect(credential.getToken(['https://vault.azure.net/.default'])).resolves.toMatchObject({ token: 't' });
    await expect(credential.getToken(['https://vault.azure.net/.default', 'https://graph.microsoft.com/.default'])).rejects.toMatchObject({ kind: 'permission-denied' });
    await expect(credential.getToken('https://vault.azure.net.evil/.default')).rejects.toThrow(/resource "https:\/\/vault.azure.net.evil"/);
    await expect(credential.getToken('x\n\u001b[31m/.default')).rejects.toThrow(/resource "x\\n\\u001b\[31m"/);
    await expect(credential.getToken([])).rejects.toMatchObject({ kind: 'permission-denied' });
  });
});
