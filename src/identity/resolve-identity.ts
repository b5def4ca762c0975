import { createHash } from 'node:crypto';
import { ClientSecretCredential } from '@azure/identity';
import type { TokenCredential } from '@azure/identity';
import { invalidArgument, permissionDenied } from '../driver/csi-error.js';
import type { IdentityParameters } from '../providers/azure/parameters.js';
import { credentialOptions } from './azure-sdk-settings.js';
import type { AzureSdkSettings } from './azure-sdk-settings.js';
import type { LruCache } from '../util/lru-cache.js';
import { podRef } from './pod-info.js';
import type { PodInfo } from './pod-info.js';

/** The one answer identity resolution gives a publish. */
export interface ResolvedIdentity {
  /** Stable id of the identity for caches and request sharing; holds no secret. */
  key: string;
  /** Loggable description, e.g. `service principal 1234-... (nodePublishSecretRef)`. */
  description: string;
  credential: TokenCredential;
}

export interface IdentityRequest {
  pod: PodInfo;
  tenantId: string;
  cloudAuthorityHost: string;
  parameters: IdentityParameters;
  /** The nodePublishSecretRef contents, already decoded by the kubelet. */
  secrets: Readonly<Record<string, string>>;
}

/**
 * Decide which Azure identity a publish uses. This version knows the service principal that the
 * pod's volume passes through `nodePublishSecretRef` (keys `clientid` and `clientsecret`, as for
 * the Azure provider); the identity modes a class can ask for (`usePodIdentity`,
 * `useVMManagedIdentity`, `clientID`) are refused with a message that says so.
 */
export function resolveIdentity(request: IdentityRequest, settings: AzureSdkSettings, cache: LruCache<TokenCredential>): ResolvedIdentity {
  const { pod, parameters } = request;
  const modes = [
    parameters.usePodIdentity && 'usePodIdentity',
    parameters.useVMManagedIdentity && 'useVMManagedIdentity',
    parameters.clientID !== '' && 'clientID',
  ].filter((m): m is string => typeof m === 'string');
  if (modes.length > 1) {
    throw invalidArgument(`parameters ${modes.join(' and ')} are mutually exclusive: set at most one`);
  }
  if (modes.length === 1) {
    throw permissionDenied(`no identity for pod ${podRef(pod)}: identity mode ${modes[0]} is not supported by this podvault version; pass a service principal through nodePublishSecretRef`);
  }

  const clientId = (request.secrets.clientid ?? '').trim();
  const clientSecret = request.secrets.clientsecret ?? '';
  if (clientId === '' && clientSecret === '') {
    throw permissionDenied(
      `no identity for pod ${podRef(pod)}: the volume has no nodePublishSecretRef with keys clientid and clientsecret`,
    );
  }
  if (clientId === '') throw invalidArgument('nodePublishSecretRef is missing key clientid');
  if (clientSecret === '') throw invalidArgument('nodePublishSecretRef is missing key clientsecret');
  if (!/^[-A-Za-z0-9._]{1,128}$/.test(clientId)) throw invalidArgument('nodePublishSecretRef key clientid is not a client id');

  // The key separates credentials by secret too (a rotated secret gets a fresh credential) but
  // holds only a digest of it.
  const secretDigest = createHash('sha256').update(clientSecret).digest('hex').slice(0, 16);
  const authority = settingsAuthority(settings, request.cloudAuthorityHost);
  const key = `sp:${authority}:${request.tenantId}:${clientId}:${secretDigest}`;
  const credential = cache.getOrCreate(
    key,
    () => new ClientSecretCredential(request.tenantId, clientId, clientSecret, credentialOptions(settings, request.cloudAuthorityHost)),
  );
  return { key, description: `service principal ${clientId} (nodePublishSecretRef)`, credential };
}

function settingsAuthority(settings: AzureSdkSettings, cloudAuthorityHost: string): string {
  return settings.authorityHost ?? cloudAuthorityHost;
}
