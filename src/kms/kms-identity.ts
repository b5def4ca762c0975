import { readFile } from 'node:fs/promises';
import { ClientAssertionCredential, ManagedIdentityCredential } from '@azure/identity';
import type { TokenCredential } from '@azure/identity';
import { CredentialFactory } from '../identity/credentials.js';
import { credentialOptions, pipelineOptions } from '../identity/azure-sdk-settings.js';
import type { AzureSdkSettings } from '../identity/azure-sdk-settings.js';
import type { AzureCloud } from '../providers/azure/clouds.js';
import { LruCache } from '../util/lru-cache.js';
import type { AzureConfig } from './azure-config.js';

/**
 * The one identity the plugin calls Key Vault as. Secrets (client secret, certificate key) come
 * from files only (azure.json, the certificate file, the projected token), never from argv.
 */
export type KmsIdentity =
  | { kind: 'managed-identity'; clientId?: string }
  | { kind: 'service-principal-secret'; tenantId: string; clientId: string; secret: string }
  | { kind: 'service-principal-certificate'; tenantId: string; clientId: string; certificatePath: string }
  | { kind: 'workload-identity'; tenantId: string; clientId: string; tokenFile: string };

/**
 * Azure/kubernetes-kms's order: a managed identity when azure.json says
 * `useManagedIdentityExtension` (user-assigned when `userAssignedIdentityID`, or our
 * `--user-assigned-identity-id`, names one), else the service principal's client secret, else its
 * certificate. Without azure.json: `--user-assigned-identity-id`, then workload identity from the
 * environment the webhook injects (AZURE_CLIENT_ID, AZURE_TENANT_ID, AZURE_FEDERATED_TOKEN_FILE),
 * then the system-assigned managed identity when `--use-managed-identity` is set.
 */
export function chooseIdentity(config: AzureConfig | undefined, flags: { userAssignedIdentityId?: string; useManagedIdentity: boolean }, env: NodeJS.ProcessEnv): KmsIdentity {
  const userAssigned = flags.userAssignedIdentityId ?? (config?.userAssignedIdentityID || undefined);
  if (config?.useManagedIdentityExtension || flags.useManagedIdentity || (flags.userAssignedIdentityId && !config?.aadClientSecret && !config?.aadClientCertPath)) {
    return { kind: 'managed-identity', ...(userAssigned ? { clientId: userAssigned } : {}) };
  }
  if (config) {
    if (!config.tenantId || !config.aadClientId) throw new Error('azure.json: tenantId and aadClientId are required for a service principal (or set useManagedIdentityExtension)');
    if (config.aadClientSecret) return { kind: 'service-principal-secret', tenantId: config.tenantId, clientId: config.aadClientId, secret: config.aadClientSecret };
    if (config.aadClientCertPath) return { kind: 'service-principal-certificate', tenantId: config.tenantId, clientId: config.aadClientId, certificatePath: config.aadClientCertPath };
    throw new Error('azure.json: none of useManagedIdentityExtension, aadClientSecret or aadClientCertPath is set');
  }
  if (env.AZURE_FEDERATED_TOKEN_FILE && env.AZURE_CLIENT_ID && env.AZURE_TENANT_ID) {
    return { kind: 'workload-identity', tenantId: env.AZURE_TENANT_ID, clientId: env.AZURE_CLIENT_ID, tokenFile: env.AZURE_FEDERATED_TOKEN_FILE };
  }
  throw new Error('no identity: give --config-file-path (azure.json), --user-assigned-identity-id, --use-managed-identity, or run with workload identity (AZURE_CLIENT_ID, AZURE_TENANT_ID, AZURE_FEDERATED_TOKEN_FILE)');
}

/** What the log and errors may say about the identity: kind and client id, nothing secret. */
export function describeIdentity(id: KmsIdentity): string {
  if (id.kind === 'managed-identity') return id.clientId ? `user-assigned managed identity ${id.clientId}` : 'system-assigned managed identity';
  return `${id.kind.replace(/-/g, ' ')} ${id.clientId} (tenant ${id.tenantId})`;
}

/** The SDK credential of `id`, through podvault's credential factory where it has the kind. */
export async function buildCredential(id: KmsIdentity, settings: AzureSdkSettings, cloud: AzureCloud): Promise<TokenCredential> {
  const factory = new CredentialFactory(settings, new LruCache<TokenCredential>(4));
  switch (id.kind) {
    case 'managed-identity':
      return id.clientId ? factory.managedIdentity({ clientId: id.clientId }).credential : new ManagedIdentityCredential({ ...pipelineOptions(settings) });
    case 'service-principal-secret':
      return factory.servicePrincipalSecret(id.tenantId, id.clientId, id.secret, cloud.authorityHost).credential;
    case 'service-principal-certificate': {
      const pem = await readFile(id.certificatePath, 'utf8').catch((err: NodeJS.ErrnoException) => {
        throw new Error(`azure.json aadClientCertPath ${id.certificatePath}: cannot read it (${err.code ?? 'error'})`);
      });
      if (!pem.includes('-----BEGIN') || !/PRIVATE KEY-----/.test(pem)) {
        throw new Error(`azure.json aadClientCertPath ${id.certificatePath}: podvault reads a PEM file with the certificate and its private key; convert a PKCS#12 file with openssl pkcs12 -nodes`);
      }
      return factory.servicePrincipalCertificate(id.tenantId, id.clientId, pem, cloud.authorityHost).credential;
    }
    case 'workload-identity':
      // The projected token is renewed by the kubelet: read it for every exchange.
      return new ClientAssertionCredential(id.tenantId, id.clientId, () => readFile(id.tokenFile, 'utf8').then((t) => t.trim()), credentialOptions(settings, cloud.authorityHost));
  }
}
