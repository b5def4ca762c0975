import { CertificateClient } from '@azure/keyvault-certificates';
import { KeyClient } from '@azure/keyvault-keys';
import { SecretClient } from '@azure/keyvault-secrets';
import { createDefaultHttpClient } from '@azure/core-rest-pipeline';
import type { HttpClient } from '@azure/core-rest-pipeline';
import { pipelineOptions } from '../../identity/azure-sdk-settings.js';
import type { AzureSdkSettings } from '../../identity/azure-sdk-settings.js';
import type { ResolvedIdentity } from '../../identity/identity-resolver.js';
import { LruCache } from '../../util/lru-cache.js';

/** The three SDK clients of one vault for one identity. */
export interface VaultClients {
  secrets: SecretClient;
  keys: KeyClient;
  certificates: CertificateClient;
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
        keys: new KeyClient(vaultUrl, identity.credential, options),
        certificates: new CertificateClient(vaultUrl, identity.credential, options),
      };
    });
  }
}
