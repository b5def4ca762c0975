import { readFile } from 'node:fs/promises';
import type { TokenCredential } from '@azure/identity';
import pino from 'pino';
import { readAzureConfig } from '../kms/azure-config.js';
import { buildCredential, chooseIdentity, describeIdentity } from '../kms/kms-identity.js';
import type { KmsIdentity } from '../kms/kms-identity.js';
import { createLogger } from '../log.js';
import { findCloud } from '../providers/azure/clouds.js';
import type { DataKeyUnwrapper, DataKeyWrapper } from './data-keys.js';
import { KeyVaultDataKeys } from './key-vault-data-keys.js';

/** The identity and vault flags `seal`, `render` and `reseal` share. */
export interface VaultFlags {
  configFilePath?: string;
  userAssignedIdentityId?: string;
  useManagedIdentity?: boolean;
  imdsEndpoint?: string;
  cloud?: string;
  caFile?: string;
  authorityHost?: string;
  allowVault?: string[];
  logLevel?: string;
}

/**
 * Who the CLI calls Key Vault as, in the order of the Azure SDK's DefaultAzureCredential, over
 * the identities `podvault kms-plugin` knows: azure.json or a managed identity when a flag names
 * one; else a service principal from AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET; else
 * workload identity (AZURE_FEDERATED_TOKEN_FILE); else the Azure CLI's login (`az login`). No secret
 * is read from argv.
 */
export async function chooseCliIdentity(flags: VaultFlags, env: NodeJS.ProcessEnv): Promise<KmsIdentity | { kind: 'azure-cli' }> {
  if (flags.configFilePath || flags.userAssignedIdentityId || flags.useManagedIdentity) {
    const config = flags.configFilePath ? await readAzureConfig(flags.configFilePath) : undefined;
    return chooseIdentity(config, { userAssignedIdentityId: flags.userAssignedIdentityId, useManagedIdentity: flags.useManagedIdentity ?? false }, env);
  }
  if (env.AZURE_TENANT_ID && env.AZURE_CLIENT_ID && env.AZURE_CLIENT_SECRET) {
    return { kind: 'service-principal-secret', tenantId: env.AZURE_TENANT_ID, clientId: env.AZURE_CLIENT_ID, secret: env.AZURE_CLIENT_SECRET };
  }
  if (env.AZURE_TENANT_ID && env.AZURE_CLIENT_ID && env.AZURE_FEDERATED_TOKEN_FILE) return chooseIdentity(undefined, { useManagedIdentity: false }, env);
  return { kind: 'azure-cli' };
}

/**
 * Data keys through Key Vault as the chosen identity. Built on first use, so `render` of a text
 * with no `{{pv:…}}` marker (only s5 ones) needs no identity at all.
 */
export function cliDataKeys(flags: VaultFlags, env: NodeJS.ProcessEnv): DataKeyUnwrapper & DataKeyWrapper {
  let built: Promise<KeyVaultDataKeys> | undefined;
  const build = async (): Promise<KeyVaultDataKeys> => {
    const cloud = findCloud(flags.cloud ?? '');
    if (!cloud) throw new Error(`--cloud ${JSON.stringify(flags.cloud)} is not one of AzurePublicCloud, AzureUSGovernmentCloud, AzureChinaCloud`);
    if (flags.imdsEndpoint) process.env.AZURE_POD_IDENTITY_AUTHORITY_HOST = flags.imdsEndpoint;
    const allowed = (flags.allowVault ?? []).map((origin) => {
      const url = new URL(origin);
      if (url.protocol !== 'https:') throw new Error(`--allow-vault ${JSON.stringify(origin)} must be an https origin`);
      return url.origin;
    });
    const settings = {
      ...(flags.authorityHost ? { authorityHost: flags.authorityHost } : {}),
      ...(flags.caFile ? { caPem: await readFile(flags.caFile, 'utf8') } : {}),
      allowedVaultOrigins: allowed,
      maxRetries: 0,
    };
    const identity = await chooseCliIdentity(flags, env);
    let credential: TokenCredential;
    if (identity.kind === 'azure-cli') {
      const { AzureCliCredential } = await import('@azure/identity');
      credential = new AzureCliCredential();
    } else {
      credential = await buildCredential(identity, settings, cloud);
    }
    const log = createLogger({ level: flags.logLevel ?? 'warn', destination: pino.destination({ fd: 2, sync: true }) });
    log.debug({ identity: identity.kind === 'azure-cli' ? 'Azure CLI login' : describeIdentity(identity) }, 'calling Key Vault');
    return new KeyVaultDataKeys({ credential, settings, cloud, allowedOrigins: allowed, log });
  };
  const get = (): Promise<KeyVaultDataKeys> => (built ??= build());
  return {
    unwrap: async (keyId, algorithm, wrapped, signal) => (await get()).unwrap(keyId, algorithm, wrapped, signal),
    wrap: async (keyId, algorithm, dataKey, signal) => (await get()).wrap(keyId, algorithm, dataKey, signal),
  };
}
