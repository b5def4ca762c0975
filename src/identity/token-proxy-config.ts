/**
 * The AKS token proxy as the operator configures it, kept free of SDK imports so the CLI can
 * validate flags without loading the Azure SDKs.
 */

/** The audience of the pod token the AKS token proxy accepts (CSIDriver `tokenRequests`). */
export const IDENTITY_BINDING_AUDIENCE = 'api://AKSIdentityBinding';

/**
 * Where the node's AKS token proxy is and how to trust it: the operator's flags
 * (`--azure-token-proxy`, `--azure-token-proxy-ca-file`, `--azure-token-proxy-sni-name`) or the
 * variables the Azure SDKs read (`AZURE_KUBERNETES_TOKEN_PROXY`, `AZURE_KUBERNETES_CA_FILE` /
 * `AZURE_KUBERNETES_CA_DATA`, `AZURE_KUBERNETES_SNI_NAME`). Never a class parameter: whoever
 * chooses this endpoint receives the pods' service-account tokens.
 */
export interface TokenProxyConfig {
  /** https URL; requests keep their path below its path. */
  url: string;
  /** PEM bundle file, re-read when it changes (the cluster CA rotates). */
  caFile?: string;
  /** PEM bundle given inline. At most one of caFile and caData. */
  caData?: string;
  /** TLS server name (SNI) presented to the proxy and checked against its certificate. */
  sniName?: string;
}

/** The proxy URL's rules, as the Azure SDKs apply them: https, no user info, query or fragment. */
export function tokenProxyUrlProblem(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'is not a URL';
  }
  if (url.protocol !== 'https:') return 'must be an https:// URL';
  if (url.username || url.password) return 'must not contain user info';
  if (url.search || value.includes('?')) return 'must not contain a query';
  if (url.hash || value.includes('#')) return 'must not contain a fragment';
  return undefined;
}
