import { ClientSecretCredential } from '@azure/identity';
import { SecretClient } from '@azure/keyvault-secrets';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDevVault } from '../src/devvault/server.js';
import type { DevVault } from '../src/devvault/server.js';
import { parseSeed } from '../src/devvault/seed.js';
import { createLogger } from '../src/log.js';
import { AZURE_CLOUDS } from '../src/providers/azure/clouds.js';
import { TokenBucket } from '../src/version-watch/token-bucket.js';
import { VersionPoller } from '../src/version-watch/version-poller.js';
import type { WatchedObject } from '../src/version-watch/object-discovery.js';

const READER = 'strategy-reader';
const SECRET = 'strategy-reader-secret';
const VAULT_SECRETS = 500;

/**
 * The measurement behind docs/rotation.md's choice: requests per poll round for the strategy the
 * watcher uses (A: one versions listing per watched secret) and for the alternative (B: the vault's
 * own listing, `GET /secrets`, which names no version, then a versions listing per secret whose
 * `updated` moved), against dev-vault with 500 secrets.
 */
describe('version polling strategy: requests per round, measured against dev-vault', () => {
  let vault: DevVault;
  beforeAll(async () => {
    const secrets = Array.from({ length: VAULT_SECRETS }, (_, i) => ({ name: `s${i}`, versions: Array.from({ length: i < 10 ? 60 : 3 }, (_v, n) => ({ value: `v${n}` })) }));
    vault = await startDevVault({ seed: parseSeed(stringify({ clients: [{ clientId: READER, clientSecret: SECRET, keyVaultReader: true, read: [] }], secrets }), 'strategy') });
  });
  afterAll(async () => vault?.close());

  const readerRequests = (): number => vault.vaultLog.filter((r) => r.clientId === READER).length;

  async function strategyA(names: string[]): Promise<number> {
    const poller = new VersionPoller({
      credential: new ClientSecretCredential(vault.tenantId, READER, SECRET, { authorityHost: vault.url, disableInstanceDiscovery: true, tlsOptions: { ca: vault.caPem } } as never),
      cloud: AZURE_CLOUDS[0]!,
      settings: { authorityHost: vault.url, caPem: vault.caPem, allowedVaultOrigins: [vault.url], maxRetries: 0 },
      bucket: new TokenBucket(10_000),
      log: createLogger({ level: 'silent' }),
      maxInFlightPerHost: 8,
      requestTimeoutMs: 10_000,
      maxAttempts: 1,
      onRequest: () => undefined,
    });
    const poll = async (): Promise<void> => {
      for (const name of names) {
        const object: WatchedObject = { vaultUrl: vault.url, collection: 'secrets', name };
        expect(await poller.poll(object, Date.now() + 60_000, new AbortController().signal)).toHaveProperty('version');
      }
    };
    await poll(); // warm: authentication challenge and token
    const before = readerRequests();
    await poll();
    return readerRequests() - before;
  }

  async function strategyB(changed: number): Promise<number> {
    const credential = new ClientSecretCredential(vault.tenantId, READER, SECRET, { authorityHost: vault.url, disableInstanceDiscovery: true, tlsOptions: { ca: vault.caPem } } as never);
    const client = new SecretClient(vault.url, credential, { disableChallengeResourceVerification: true, retryOptions: { maxRetries: 0 }, tlsOptions: { ca: vault.caPem } } as never);
    let listed = 0;
    for await (const page of client.listPropertiesOfSecrets().byPage({ maxPageSize: 25 })) {
      listed += page.length;
      // The listing names no version: `id` is https://host/secrets/<name>.
      for (const p of page) expect(p.version).toBeUndefined();
    }
    expect(listed).toBe(VAULT_SECRETS);
    const before = readerRequests();
    for await (const page of client.listPropertiesOfSecrets().byPage({ maxPageSize: 25 })) void page;
    for (let i = 0; i < changed; i++) for await (const page of client.listPropertiesOfSecretVersions(`s${100 + i}`).byPage({ maxPageSize: 25 })) void page;
    return readerRequests() - before;
  }

  it('A costs one request per watched secret (ceil(versions/25)); B costs ceil(vault size/25) plus one per change', async () => {
    const rows: string[] = [];
    for (const watched of [10, 50, 200]) {
      const names = Array.from({ length: watched }, (_, i) => `s${i + 10}`);
      const a = await strategyA(names);
      expect(a).toBe(watched);
      const b = await strategyB(5);
      expect(b).toBe(Math.ceil(VAULT_SECRETS / 25) + 5);
      rows.push(`watched ${watched} of ${VAULT_SECRETS} (3 versions each), 5 changed: A ${a} requests, B ${b}`);
    }
    // Secrets with 60 versions: three pages each.
    const deep = await strategyA(Array.from({ length: 10 }, (_, i) => `s${i}`));
    expect(deep).toBe(10 * 3);
    rows.push(`watched 10 secrets of 60 versions each: A ${deep} requests`);
    console.log(rows.join('\n'));
  });
});
