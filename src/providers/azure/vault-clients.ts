import type { CertificateClient } from '@azure/keyvault-certificates';
import type { CryptographyClient, KeyClient } from '@azure/keyvault-keys';
import { SecretClient } from '@azure/keyvault-secrets';
import { createDefaultHttpClient } from '@azure/core-rest-pipeline';
import type { HttpClient } from '@azure/core-rest-pipeline';
import { pipelineOptions } from '../../identity/azure-sdk-settings.js';
import type { AzureSdkSettings } from '../../identity/azure-sdk-settings.js';
import type { ResolvedIdentity } from '../../identity/identity-resolver.js';
import { LruCache } from '../../util/lru-cache.js';
import { permissionDenied } from '../../errors/podvault-error.js';
import type { TokenCredential } from '@azure/identity';

/**
 * The three SDK clients of one vault for one identity. The key and certificate clients (and their
 * SDK modules, ~10 MiB resident) are loaded on first use: most classes list secrets only.
 */
export interface VaultClients {
  secrets: SecretClient;
  keys(): Promise<KeyClient>;
  certificates(): Promise<CertificateClient>;
  /**
   * A CryptographyClient for one key version of this vault (a template's sealed values), with the
   * same credential, pipeline and HTTP client as the others; built with the versioned id (the SDK
   * reports that id). Before its first operation the SDK reads the key once (getKey; a 403 there
   * makes it remote-only); unwrapKey with RSA-OAEP-256 always goes to the vault.
   */
  cryptography(versionedKeyId: string): Promise<CryptographyClient>;
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

  /** `keyVaultResource`: the class's cloud's Key Vault resource, the only audience tokens are asked for. */
  get(vaultUrl: string, identity: ResolvedIdentity, verifyChallengeResource: boolean, keyVaultResource: string): VaultClients {
    return this.clients.getOrCreate(`${vaultUrl}|${identity.key}|${keyVaultResource}`, () => {
      const credential = keyVaultOnly(identity.credential, keyVaultResource, vaultUrl);
      const options = {
        ...pipelineOptions(this.settings),
        // The provider's retry policy (retry-policy.ts) is the only retry loop for vault requests.
        retryOptions: { maxRetries: 0 },
        httpClient: this.httpClients.getOrCreate(vaultUrl, () => createDefaultHttpClient()),
        // For a cloud vault the SDK checks that the vault's auth challenge names the vault's own
        // resource; an operator-allowed custom origin cannot pass that check by construction.
        disableChallengeResourceVerification: !verifyChallengeResource,
      };
      const cryptography = new LruCache<Promise<CryptographyClient>>(16);
      return {
        secrets: new SecretClient(vaultUrl, credential, options),
        cryptography: (keyId) => cryptography.getOrCreate(keyId, async () => new (await import('@azure/keyvault-keys')).CryptographyClient(keyId, credential, options)),
        keys: once(async () => new (await import('@azure/keyvault-keys')).KeyClient(vaultUrl, credential, options)),
        certificates: once(async () => new (await import('@azure/keyvault-certificates')).CertificateClient(vaultUrl, credential, options)),
      };
    });
  }
}

/**
 * The credential the SDK clients get: it asks for a token only for the Key Vault resource. The
 * clients take the token's scope from the vault's 401 challenge, and for an operator-allowed
 * custom origin (--allow-vault-uri) the SDK cannot check that challenge, so a hostile origin could
 * ask for, and receive, the identity's token for any resource (ARM: https://management.azure.com).
 * Whatever the origin, anything but `<Key Vault resource>/.default` is refused before Entra ID or
 * IMDS is asked.
 */
export function keyVaultOnly(credential: TokenCredential, keyVaultResource: string, vaultUrl: string): TokenCredential {
  const allowed = new Set([`${keyVaultResource}/.default`, `${keyVaultResource}//.default`]);
  return {
    getToken(scopes, options) {
      const asked = typeof scopes === 'string' ? [scopes] : scopes;
      const foreign = asked.find((s) => !allowed.has(s)) ?? (asked.length === 0 ? '(none)' : undefined);
      if (foreign !== undefined) {
        // The challenge's text is the origin's: quoted, cut short, control characters escaped.
        const resource = JSON.stringify(foreign.replace(/\/\.default$/, '').slice(0, 200));
        return Promise.reject(
          permissionDenied(`vault ${vaultUrl}: its authentication challenge asks for a token for resource ${resource}; podvault asks tokens only for the Key Vault resource ${keyVaultResource}`),
        );
      }
      return credential.getToken(scopes, options);
    },
  };
}
