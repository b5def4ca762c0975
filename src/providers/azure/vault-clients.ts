import type { CertificateClient } from '@azure/keyvault-certificates';
import type { KeyClient } from '@azure/keyvault-keys';
import { SecretClient } from '@azure/keyvault-secrets';
import { createDefaultHttpClient } from '@azure/core-rest-pipeline';
import type { HttpClient } from '@azure/core-rest-pipeline';
import { pipelineOptions } from '../../identity/azure-sdk-settings.js';
import type { AzureSdkSettings } from '../../identity/azure-sdk-settings.js';
import type { ResolvedIdentity } from '../../identity/identity-resolver.js';
import { LruCache } from '../../util/lru-cache.js';

/**
 * The three SDK clients of one vault for one identity. The key and certificate clients (and their
 * SDK modules, ~10 MiB resident) are loaded on first use: most classes list secrets only.
 */
export interface VaultClients {
  secrets: SecretClient;
  keys(): Promise<KeyClient>;
  certificates(): Promise<CertificateClient>;
}

function once<T>(make: () => Promise<T>): () => Promise<T> {
  let made: Promise<T> | undefined;
  return () => (made ??= make());
}

/**
 * SDK clients, one set per vault and identity (each keeps its identity's auth challenge and
 * token), all of one vault sharing one HTTP client, hence one keep-alive connection pool per vault
 * host whatever the number of identities.
 */
export class VaultClientPool {
  private readonly clients = new LruCache<VaultClients>();
  private readonly httpClients = new LruCache<HttpClient>(64);

  constructor(private readonly settings: AzureSdkSettings) {}

  get(vaultUrl: string, identity: ResolvedIdentity, verifyChallengeResource: boolean): VaultClients {
    return this.clients.getOrCreate(`${vaultUrl}|${identity.key}`, () => {
      const options = {
        ...pipelineOptions(this.settings),
        // The provider's retry policy (retry-policy.ts) is the only retry loop for vault requests.
        retryOptions: { maxRetries: 0 },
        httpClient: this.httpClients.getOrCreate(vaultUrl, () => createDefaultHttpClient()),
        // For a cloud vault the SDK checks that the vault's auth challenge names the vault's own
        // resource; an operator-allowed custom origin cannot pass that check by construction.
        disableChallengeResourceVerification: !verifyChallengeResource,
      };
      return {
        secrets: new SecretClient(vaultUrl, identity.credential, options),
        keys: once(async () => new (await import('@azure/keyvault-keys')).KeyClient(vaultUrl, identity.credential, options)),
        certificates: once(async () => new (await import('@azure/keyvault-certificates')).CertificateClient(vaultUrl, identity.credential, options)),
      };
    });
  }
}
