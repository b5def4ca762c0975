import type { TokenCredential } from '@azure/identity';
import { failedPrecondition, invalidArgument, permissionDenied } from '../errors/podvault-error.js';
import type { Logger } from '../log.js';
import type { IdentityParameters } from './identity-parameters.js';
import type { AzureSdkSettings } from './azure-sdk-settings.js';
import { bindingRule } from './binding-policy.js';
import type { ObjectRule } from './binding-policy.js';
import type { AzureIdentity, IdentityObjects } from './crds.js';
import { CredentialFactory } from './credentials.js';
import { pkcs12Converter, pkcs12Failure } from '../untrusted/pkcs12-converter.js';
import { canonicalPem } from '../util/pem.js';
import { podRef } from './pod-info.js';
import { readForeignSafe, visibleRef, withLoggedDetail } from './visible-ref.js';
import type { PodInfo } from './pod-info.js';
import { findBoundIdentity } from './pod-identity.js';
import { ManagedIdentityPolicy } from './managed-identity-policy.js';
import type { ManagedIdentityGrant } from './managed-identity-policy.js';
import { LruCache } from '../util/lru-cache.js';
import { AZURE_CLOUDS } from '../providers/azure/clouds.js';
import { IDENTITY_BINDING_AUDIENCE } from './token-proxy-config.js';
import type { TokenProxyClient } from './token-proxy.js';

/** The one answer identity resolution gives a publish. */
export interface ResolvedIdentity {
  /** Stable id of the identity for caches and request sharing; holds no secret. */
  key: string;
  /** Loggable description, e.g. `pod identity default/app (binding default/app-binding)`. */
  description: string;
  credential: TokenCredential;
  /** Which objects this identity may read through podvault, when a binding narrows it. */
  objectRule?: ObjectRule;
}

export interface IdentityRequest {
  pod: PodInfo;
  tenantId: string;
  cloudAuthorityHost: string;
  parameters: IdentityParameters;
  /** The nodePublishSecretRef contents, already decoded by the kubelet. */
  secrets: Readonly<Record<string, string>>;
  /** Service-account tokens the kubelet passed, by audience. */
  tokens: Readonly<Record<string, string>>;
}

export interface IdentityResolverOptions {
  objects: IdentityObjects;
  settings: AzureSdkSettings;
  clusterWideBindings: boolean;
  allowNodeIdentity: boolean;
  /** --allow-managed-identity: which managed identities each namespace may bind (type 0). */
  managedIdentityGrants: readonly ManagedIdentityGrant[];
  /** --node-managed-identity: the node's own identities, refused without --allow-node-identity. */
  nodeManagedIdentities: readonly string[];
  /** The node's AKS token proxy (operator flags or AZURE_KUBERNETES_TOKEN_PROXY); useAzureTokenProxy is refused without it. */
  tokenProxy?: TokenProxyClient;
}

export const WORKLOAD_IDENTITY_AUDIENCE = 'api://AzureADTokenExchange';
export const WORKLOAD_IDENTITY_CLIENT_ID_ANNOTATION = 'azure.workload.identity/client-id';
export const WORKLOAD_IDENTITY_TENANT_ID_ANNOTATION = 'azure.workload.identity/tenant-id';

/**
 * Decide which Azure identity a publish uses, the way the Azure provider chooses (at most one of
 * `usePodIdentity`, `useVMManagedIdentity`, `clientID`); with none set: workload identity when the
 * pod's service account names a client id, else the volume's `nodePublishSecretRef` service
 * principal, else the pod identity binding (podvault's native mode). Deny by default: no mode that
 * applies is PERMISSION_DENIED naming the pod and why.
 */
export class IdentityResolver {
  private readonly credentials: CredentialFactory;
  private readonly managedIdentities: ManagedIdentityPolicy;

  constructor(private readonly options: IdentityResolverOptions) {
    this.credentials = new CredentialFactory(options.settings, new LruCache<TokenCredential>());
    this.managedIdentities = new ManagedIdentityPolicy({ grants: options.managedIdentityGrants, nodeIdentities: options.nodeManagedIdentities, allowNodeIdentity: options.allowNodeIdentity });
  }

  async resolve(request: IdentityRequest, log: Logger): Promise<ResolvedIdentity> {
    const { parameters } = request;
    const modes = [
      parameters.usePodIdentity && 'usePodIdentity',
      parameters.useVMManagedIdentity && 'useVMManagedIdentity',
      parameters.clientID !== '' && (parameters.useAzureTokenProxy ? 'useAzureTokenProxy' : 'clientID'),
    ].filter((m): m is string => typeof m === 'string');
    if (modes.length > 1) throw invalidArgument(`parameters ${modes.join(' and ')} are mutually exclusive: set at most one`);

    if (parameters.usePodIdentity) return this.podIdentity(request, log);
    if (parameters.useVMManagedIdentity) return this.nodeIdentity(request);
    if (parameters.useAzureTokenProxy) return this.identityBinding(request, parameters.clientID);
    if (parameters.clientID !== '') return this.workloadIdentity(request, parameters.clientID, request.tenantId);

    const annotations = request.pod.serviceAccount
      ? (await this.options.objects.getServiceAccount(request.pod.namespace, request.pod.serviceAccount))?.metadata.annotations
      : undefined;
    const annotatedClientId = annotations?.[WORKLOAD_IDENTITY_CLIENT_ID_ANNOTATION]?.trim();
    if (annotatedClientId) {
      return this.workloadIdentity(request, annotatedClientId, annotations?.[WORKLOAD_IDENTITY_TENANT_ID_ANNOTATION]?.trim() || request.tenantId);
    }
    if (Object.keys(request.secrets).length > 0) return this.secretRefPrincipal(request);
    return this.podIdentity(request, log);
  }

  /**
   * The service principal the volume passes through nodePublishSecretRef (`clientid`,
   * `clientsecret`). The keys are matched case-insensitively, as the Azure provider matches them:
   * Secrets written with `ClientID` / `ClientSecret` work there and must here.
   */
  private secretRefPrincipal(request: IdentityRequest): ResolvedIdentity {
    const clientId = secretRefKey(request.secrets, 'clientid').trim();
    const clientSecret = secretRefKey(request.secrets, 'clientsecret');
    if (clientId === '') throw invalidArgument('nodePublishSecretRef is missing key clientid');
    if (clientSecret === '') throw invalidArgument('nodePublishSecretRef is missing key clientsecret');
    if (!/^[-A-Za-z0-9._]{1,128}$/.test(clientId)) throw invalidArgument('nodePublishSecretRef key clientid is not a client id');
    const { key, credential } = this.credentials.servicePrincipalSecret(request.tenantId, clientId, clientSecret, request.cloudAuthorityHost);
    return { key, credential, description: `service principal ${clientId} (nodePublishSecretRef)` };
  }

  private async podIdentity(request: IdentityRequest, log: Logger): Promise<ResolvedIdentity> {
    const { pod } = request;
    const { binding, identity } = await findBoundIdentity(this.options.objects, pod, { clusterWideBindings: this.options.clusterWideBindings }, log);
    const bindingNamespace = binding.metadata.namespace ?? pod.namespace;
    const bindingRef = `${bindingNamespace}/${binding.metadata.name}`;
    // Denials name the binding only when it is of the pod's namespace (see visible-ref.ts).
    const bindingShown = visibleRef(pod.namespace, 'AzureIdentityBinding', bindingNamespace, binding.metadata.name);
    const rule = bindingRule(binding, bindingShown, bindingNamespace === pod.namespace);
    if (rule.serviceAccounts && !rule.serviceAccounts.includes(pod.serviceAccount)) {
      const detail = `no identity for pod ${podRef(pod)}: AzureIdentityBinding ${bindingRef} allows service accounts ${rule.serviceAccounts.join(', ')}, not ${JSON.stringify(pod.serviceAccount)} (annotation podvault.dev/allowed-service-accounts)`;
      const allowed = bindingNamespace === pod.namespace ? `allows service accounts ${rule.serviceAccounts.join(', ')}, not` : 'does not allow service account';
      throw withLoggedDetail(permissionDenied(`no identity for pod ${podRef(pod)}: ${bindingShown} ${allowed} ${JSON.stringify(pod.serviceAccount)} (annotation podvault.dev/allowed-service-accounts)`), detail);
    }
    const made = await this.identityCredential(identity, request);
    const identityRef = `${identity.metadata.namespace ?? pod.namespace}/${identity.metadata.name}`;
    return { ...made, description: `pod identity ${identityRef} via binding ${bindingRef} (${made.kind})`, ...(rule.objects ? { objectRule: rule.objects } : {}) };
  }

  private async identityCredential(identity: AzureIdentity, request: IdentityRequest): Promise<{ key: string; credential: TokenCredential; kind: string }> {
    const identityNamespace = identity.metadata.namespace ?? request.pod.namespace;
    const ref = visibleRef(request.pod.namespace, 'AzureIdentity', identityNamespace, identity.metadata.name);
    const { spec } = identity;
    const authority = spec.adEndpoint ? this.knownAuthority(ref, spec.adEndpoint, request.cloudAuthorityHost) : request.cloudAuthorityHost;
    if (spec.type === 0) {
      if (!spec.clientID && !spec.resourceID) throw failedPrecondition(`${ref}: type 0 (managed identity) needs spec.clientID or spec.resourceID`);
      // The id the credential will ask IMDS for is the one the operator must have allowed.
      // An AzureIdentity of another namespace (--cluster-wide-bindings): its id (a resource id holds
      // the subscription) goes to the driver log, not to this pod's events.
      await readForeignSafe(request.pod.namespace, identityNamespace, `${ref}: its managed identity is not allowed for namespace ${request.pod.namespace} (--allow-managed-identity, --allow-node-identity)`, async () =>
        this.managedIdentities.checkAzureIdentity(ref, request.pod.namespace, spec.clientID || spec.resourceID || ''),
      );
      return { ...this.credentials.managedIdentity({ clientId: spec.clientID || undefined, resourceId: spec.clientID ? undefined : spec.resourceID }), kind: `managed identity ${spec.clientID || spec.resourceID}` };
    }
    if (!spec.clientID) throw failedPrecondition(`${ref}: spec.clientID is required for type ${spec.type}`);
    if (!spec.clientPassword) throw failedPrecondition(`${ref}: spec.clientPassword (a Secret reference) is required for type ${spec.type}`);
    const tenantId = spec.tenantID || request.tenantId;
    const secretNamespace = spec.clientPassword.namespace ?? identity.metadata.namespace ?? request.pod.namespace;
    if (!this.options.clusterWideBindings && secretNamespace !== request.pod.namespace) {
      throw withLoggedDetail(
        permissionDenied(`${ref}: its clientPassword Secret lives outside the pod's namespace ${request.pod.namespace}`),
        `${ref}: its clientPassword Secret ${secretNamespace}/${spec.clientPassword.name} is outside the pod's namespace`,
      );
    }
    const secretName = spec.clientPassword.name;
    const secretRef = visibleRef(request.pod.namespace, 'Secret', secretNamespace, secretName);
    const data = await readForeignSafe(request.pod.namespace, secretNamespace, `${ref}: cannot read its clientPassword ${secretRef}`, () => this.options.objects.getSecret(secretNamespace, secretName));
    if (!data) throw failedPrecondition(`${ref}: its clientPassword ${secretRef} does not exist`);
    if (spec.type === 1) {
      const secret = data.clientSecret?.toString('utf8') ?? '';
      if (secret === '') throw failedPrecondition(`${ref}: ${secretRef} has no key clientSecret`);
      return { ...this.credentials.servicePrincipalSecret(tenantId, spec.clientID, secret, authority), kind: `service principal ${spec.clientID}` };
    }
    const certificate = data.certificate;
    if (!certificate || certificate.length === 0) throw failedPrecondition(`${ref}: ${secretRef} has no key certificate`);
    let pem: string;
    try {
      // PEM is rebuilt block by block (linear), never handed to the SDK as the tenant wrote it.
      pem = certificate.includes('-----BEGIN') ? canonicalPem(certificate.toString('utf8')) : await pkcs12Converter.convert(certificate, data.password?.toString('utf8') ?? '');
      if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw invalidArgument('holds no PEM CERTIFICATE block');
    } catch (err) {
      throw pkcs12Failure(err, `${ref}: ${secretRef} key certificate (PEM, or a PFX opened with key password)`, 'failed-precondition');
    }
    return { ...this.credentials.servicePrincipalCertificate(tenantId, spec.clientID, pem, authority), kind: `service principal ${spec.clientID} with certificate` };
  }

  /**
   * `spec.adEndpoint` is the AzureIdentity author's text, and the service principal's secret or
   * assertion is posted to it from the node: only a known cloud's Entra ID authority (or the
   * operator's --authority-host) is accepted, never an arbitrary host (a collector, or an address
   * only the node can reach).
   */
  private knownAuthority(ref: string, adEndpoint: string, cloudAuthorityHost: string): string {
    let origin: string | undefined;
    try {
      const url = new URL(adEndpoint);
      if (url.protocol === 'https:' && (url.pathname === '/' || url.pathname === '')) origin = url.origin;
    } catch {
      origin = undefined;
    }
    // The class's own cloud counts too: for AzureStackCloud it comes from an operator-allowed file.
    const known = [...AZURE_CLOUDS.map((c) => c.authorityHost), cloudAuthorityHost, ...(this.options.settings.authorityHost ? [this.options.settings.authorityHost] : [])];
    if (origin === undefined || !known.includes(origin)) {
      throw invalidArgument(`${ref}: spec.adEndpoint must be the Entra ID authority of a known cloud (${AZURE_CLOUDS.map((c) => c.authorityHost).join(', ')})`);
    }
    return origin;
  }

  /** The node's own managed identity: every pod on the node would share it, so it is opt-in. */
  private nodeIdentity(request: IdentityRequest): ResolvedIdentity {
    if (!this.options.allowNodeIdentity) {
      throw permissionDenied(
        `no identity for pod ${podRef(request.pod)}: useVMManagedIdentity gives every pod on the node the node's access, and this driver runs without --allow-node-identity`,
      );
    }
    const clientId = request.parameters.userAssignedIdentityID;
    this.managedIdentities.checkNodeIdentity(`pod ${podRef(request.pod)}`, request.pod.namespace, clientId);
    const { key, credential } = this.credentials.managedIdentity(clientId ? { clientId } : {});
    return { key, credential, description: `node managed identity ${clientId || '(system-assigned)'}` };
  }

  private workloadIdentity(request: IdentityRequest, clientId: string, tenantId: string): ResolvedIdentity {
    const token = request.tokens[WORKLOAD_IDENTITY_AUDIENCE];
    if (!token) {
      throw permissionDenied(
        `no identity for pod ${podRef(request.pod)}: workload identity needs the pod's service-account token for audience ${WORKLOAD_IDENTITY_AUDIENCE}; the CSIDriver object must request it (tokenRequests)`,
      );
    }
    const serviceAccount = `${request.pod.namespace}/${request.pod.serviceAccount}`;
    const { key, credential } = this.credentials.workloadIdentity(tenantId, clientId, serviceAccount, token, request.cloudAuthorityHost);
    return { key, credential, description: `workload identity ${clientId} for service account ${serviceAccount}` };
  }

  /**
   * AKS identity binding (`useAzureTokenProxy`): the pod's own token for api://AKSIdentityBinding
   * goes to the token proxy the operator configured, which checks it (and that the service
   * account may use `clientId`) and answers with a Key Vault token. The class chooses the client
   * id, never the endpoint.
   */
  private identityBinding(request: IdentityRequest, clientId: string): ResolvedIdentity {
    const proxy = this.options.tokenProxy;
    if (!proxy) {
      throw failedPrecondition(
        `pod ${podRef(request.pod)}: parameter useAzureTokenProxy needs the node's AKS token proxy, and this driver runs without --azure-token-proxy (or AZURE_KUBERNETES_TOKEN_PROXY)`,
      );
    }
    if (!/^[-A-Za-z0-9._]{1,128}$/.test(clientId)) throw invalidArgument('parameter clientID is not a client id');
    const token = request.tokens[IDENTITY_BINDING_AUDIENCE];
    if (!token) {
      throw permissionDenied(
        `no identity for pod ${podRef(request.pod)}: useAzureTokenProxy needs the pod's service-account token for audience ${IDENTITY_BINDING_AUDIENCE}; the CSIDriver object must request it (tokenRequests)`,
      );
    }
    const serviceAccount = `${request.pod.namespace}/${request.pod.serviceAccount}`;
    const { key, credential } = this.credentials.identityBinding(request.tenantId, clientId, serviceAccount, token, request.cloudAuthorityHost, proxy);
    return { key, credential, description: `identity binding ${clientId} for service account ${serviceAccount} via token proxy ${proxy.description}` };
  }
}

/**
 * The value of a nodePublishSecretRef key, its name matched case-insensitively; '' when absent.
 * Two spellings with different values are refused rather than one picked (the provider's map
 * iteration would pick either); the message names the keys, never a value.
 */
function secretRefKey(secrets: Readonly<Record<string, string>>, name: string): string {
  const matches = Object.entries(secrets).filter(([key]) => key.toLowerCase() === name);
  const values = new Set(matches.map(([, value]) => value));
  if (values.size > 1) throw invalidArgument(`nodePublishSecretRef holds key ${name} more than once with different values (${matches.map(([key]) => key).join(', ')})`);
  return matches[0]?.[1] ?? '';
}
