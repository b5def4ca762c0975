import { OpenidApi, WellKnownApi } from '@kubernetes/client-node';
import type { KubeConfig } from '@kubernetes/client-node';
import type { ServiceAccountKeySource } from '../identity/pod-token.js';

/**
 * The cluster's service-account token keys from the API server's OIDC discovery endpoints
 * (`/.well-known/openid-configuration`, `/openid/v1/jwks`; ClusterRole
 * system:service-account-issuer-discovery), through @kubernetes/client-node.
 */
export class KubeServiceAccountKeys implements ServiceAccountKeySource {
  private readonly openid: OpenidApi;
  private readonly wellKnown: WellKnownApi;

  constructor(private readonly kubeConfig: KubeConfig) {
    this.openid = kubeConfig.makeApiClient(OpenidApi);
    this.wellKnown = kubeConfig.makeApiClient(WellKnownApi);
  }

  get description(): string {
    return `the Kubernetes API ${this.kubeConfig.getCurrentCluster()?.server ?? ''} (/openid/v1/jwks)`;
  }

  async fetch(): Promise<{ issuer: string; jwks: unknown }> {
    const [configuration, jwks] = await Promise.all([this.wellKnown.getServiceAccountIssuerOpenIDConfiguration(), this.openid.getServiceAccountIssuerOpenIDKeyset()]);
    const parse = (body: unknown): unknown => (typeof body === 'string' ? JSON.parse(body) : body);
    const issuer = (parse(configuration) as { issuer?: unknown } | null)?.issuer;
    if (typeof issuer !== 'string' || issuer === '') throw new Error('the OpenID configuration names no issuer');
    return { issuer, jwks: parse(jwks) };
  }
}
