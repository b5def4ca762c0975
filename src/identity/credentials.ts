import { createHash } from 'node:crypto';
import { ClientAssertionCredential, ClientCertificateCredential, ClientSecretCredential, ManagedIdentityCredential } from '@azure/identity';
import type { TokenCredential } from '@azure/identity';
import type { LruCache } from '../util/lru-cache.js';
import { credentialOptions, pipelineOptions } from './azure-sdk-settings.js';
import type { AzureSdkSettings } from './azure-sdk-settings.js';
import { tokenProxyCredential } from './token-proxy.js';
import type { TokenProxyClient } from './token-proxy.js';

/**
 * SDK credentials, one per identity, reused across publishes so each caches its own tokens (a
 * token is fetched once per identity and lifetime, not once per publish). Cache keys name the
 * identity and hold only digests of secrets: a rotated secret gets a fresh credential.
 */
export class CredentialFactory {
  constructor(
    private readonly settings: AzureSdkSettings,
    private readonly cache: LruCache<TokenCredential>,
  ) {}

  private authority(cloudAuthorityHost: string): string {
    return this.settings.authorityHost ?? cloudAuthorityHost;
  }

  servicePrincipalSecret(tenantId: string, clientId: string, secret: string, cloudAuthorityHost: string): { key: string; credential: TokenCredential } {
    const key = `sp:${this.authority(cloudAuthorityHost)}:${tenantId}:${clientId}:${digest(secret)}`;
    const credential = this.cache.getOrCreate(key, () => new ClientSecretCredential(tenantId, clientId, secret, credentialOptions(this.settings, cloudAuthorityHost)));
    return { key, credential };
  }

  servicePrincipalCertificate(tenantId: string, clientId: string, certificatePem: string, cloudAuthorityHost: string): { key: string; credential: TokenCredential } {
    const key = `spc:${this.authority(cloudAuthorityHost)}:${tenantId}:${clientId}:${digest(certificatePem)}`;
    const credential = this.cache.getOrCreate(
      key,
      () => new ClientCertificateCredential(tenantId, clientId, { certificate: certificatePem }, credentialOptions(this.settings, cloudAuthorityHost)),
    );
    return { key, credential };
  }

  /** A user-assigned managed identity through IMDS, by client id or resource id. */
  managedIdentity(id: { clientId?: string; resourceId?: string }): { key: string; credential: TokenCredential } {
    const key = `mi:${id.clientId ?? ''}:${id.resourceId ?? ''}`;
    const options = { ...pipelineOptions(this.settings) };
    const credential = this.cache.getOrCreate(key, () =>
      id.resourceId ? new ManagedIdentityCredential({ resourceId: id.resourceId, ...options }) : new ManagedIdentityCredential({ clientId: id.clientId ?? '', ...options }),
    );
    return { key, credential };
  }

  /**
   * Workload identity: the pod's projected service-account token (audience
   * api://AzureADTokenExchange) exchanged for an Entra token. One credential per pod token: the
   * access a publish gets rests on that pod's own token, never on one another pod presented
   * earlier (the kubelet renews these tokens, so the cache turns over with them).
   */
  workloadIdentity(tenantId: string, clientId: string, serviceAccount: string, podToken: string, cloudAuthorityHost: string): { key: string; credential: TokenCredential } {
    const key = `wi:${this.authority(cloudAuthorityHost)}:${tenantId}:${clientId}:${serviceAccount}:${digest(podToken)}`;
    const credential = this.cache.getOrCreate(
      key,
      () => new ClientAssertionCredential(tenantId, clientId, async () => podToken, credentialOptions(this.settings, cloudAuthorityHost)),
    );
    return { key, credential };
  }

  /**
   * Identity binding (AKS): the pod's token for api://AKSIdentityBinding, presented as the client
   * assertion of the managed identity `clientId`, but sent to the operator's token proxy instead
   * of Entra ID (every request of this credential goes there, see TokenProxyClient). One
   * credential per pod token, as for workload identity.
   */
  identityBinding(tenantId: string, clientId: string, serviceAccount: string, podToken: string, cloudAuthorityHost: string, proxy: TokenProxyClient): { key: string; credential: TokenCredential } {
    const key = `ib:${proxy.description}:${tenantId}:${clientId}:${serviceAccount}:${digest(podToken)}`;
    const credential = this.cache.getOrCreate(key, () =>
      tokenProxyCredential(
        new ClientAssertionCredential(tenantId, clientId, async () => podToken, {
          authorityHost: this.authority(cloudAuthorityHost),
          // The proxy serves the tenant's metadata; instance discovery would ask a public host.
          disableInstanceDiscovery: true,
          retryOptions: pipelineOptions(this.settings).retryOptions,
          httpClient: proxy,
        }),
        proxy.description,
        clientId,
      ),
    );
    return { key, credential };
  }
}

function digest(secret: string): string {
  return createHash('sha256').update(secret).digest('hex').slice(0, 16);
}
