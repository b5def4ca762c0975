import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { parseDuration } from '../config/driver-config.js';
import type { AzureSdkSettings } from '../identity/azure-sdk-settings.js';
import { findCloud } from '../providers/azure/clouds.js';
import type { AzureCloud } from '../providers/azure/clouds.js';
import { readAzureConfig } from './azure-config.js';
import { keyRefFromAzureFlags, parseKeyId } from './key-ref.js';
import type { KeyRef } from './key-ref.js';
import { chooseIdentity } from './kms-identity.js';
import type { KmsIdentity } from './kms-identity.js';
import { parseListenAddress } from './listen-address.js';
import type { ListenAddress } from './listen-address.js';

export const DEFAULT_KMS_LISTEN = 'unix:///var/run/podvault-kms/kms.sock';
export const AZURE_JSON_DEFAULT = '/etc/kubernetes/azure.json';
/** A real wrap/unwrap round trip this often (3 vault calls; 36 an hour with a versionless key). */
export const DEFAULT_HEALTH_INTERVAL = '5m';
/** kube-apiserver's default KMS v2 timeout: Encrypt and Decrypt answer within it or fail. */
export const DEFAULT_KMS_TIMEOUT = '3s';
export const DEFAULT_KMS_VAULT_REQUEST_TIMEOUT = '2s';
export const DEFAULT_KMS_VAULT_MAX_ATTEMPTS = 3;
export const DEFAULT_KMS_VAULT_MAX_IN_FLIGHT = 32;

/** The flags of `podvault kms-plugin`, as commander hands them over. */
export interface KmsFlags {
  listen?: string;
  listenAddr?: string;
  keyId?: string;
  keyvaultName?: string;
  keyName?: string;
  keyVersion?: string;
  managedHsm?: boolean;
  configFilePath?: string;
  userAssignedIdentityId?: string;
  useManagedIdentity?: boolean;
  imdsEndpoint?: string;
  cloud?: string;
  caFile?: string;
  authorityHost?: string;
  healthInterval?: string;
  timeout?: string;
  vaultRequestTimeout?: string;
  vaultMaxAttempts?: string;
  vaultMaxInFlight?: string;
  metricsAddr?: string;
  healthzPort?: string;
  healthzPath?: string;
  metricsBackend?: string;
  proxyMode?: boolean;
  logLevel: string;
}

/** One validated configuration, built at start; nothing reads flags or the environment later. */
export interface KmsConfig {
  listen: ListenAddress;
  key: KeyRef;
  cloud: AzureCloud;
  identity: KmsIdentity;
  sdk: AzureSdkSettings;
  /** The vault's auth challenge is checked to name Key Vault only for the cloud's own vault domain. */
  verifyChallengeResource: boolean;
  imdsEndpoint?: string;
  healthIntervalMs: number;
  timeoutMs: number;
  vaultRequestTimeoutMs: number;
  vaultMaxAttempts: number;
  vaultMaxInFlight: number;
  /** `host:port` of /metrics and /healthz, when asked for. */
  metricsAddr?: string;
  logLevel: string;
}

function positiveInt(flag: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} ${JSON.stringify(value)} must be a positive integer`);
  return n;
}

function duration(flag: string, value: string): number {
  try {
    return parseDuration(value);
  } catch (err) {
    throw new Error(`${flag}: ${(err as Error).message}`);
  }
}

export async function buildKmsConfig(flags: KmsFlags, env: NodeJS.ProcessEnv): Promise<KmsConfig> {
  if (flags.proxyMode) throw new Error('--proxy-mode (Azure/kubernetes-kms\'s egress proxy) is not supported; reach Key Vault through the node\'s network or HTTPS_PROXY');
  if (flags.metricsBackend !== undefined && flags.metricsBackend !== 'prometheus') throw new Error(`--metrics-backend ${JSON.stringify(flags.metricsBackend)}: only prometheus is served`);
  if (flags.healthzPath !== undefined && flags.healthzPath !== '/healthz') throw new Error(`--healthz-path ${JSON.stringify(flags.healthzPath)}: podvault serves /healthz only`);
  if (flags.listen && flags.listenAddr && flags.listen !== flags.listenAddr) throw new Error('--listen and --listen-addr name different sockets; give one');

  const configPath = flags.configFilePath ?? (existsSync(AZURE_JSON_DEFAULT) && !flags.userAssignedIdentityId && !flags.useManagedIdentity ? AZURE_JSON_DEFAULT : undefined);
  const azureConfig = configPath ? await readAzureConfig(configPath) : undefined;
  const cloudName = flags.cloud ?? azureConfig?.cloud ?? '';
  const cloud = findCloud(cloudName);
  if (!cloud) throw new Error(`cloud ${JSON.stringify(cloudName)} is not one of AzurePublicCloud, AzureUSGovernmentCloud, AzureChinaCloud`);

  const azureKeyFlags = flags.keyvaultName !== undefined || flags.keyName !== undefined || flags.keyVersion !== undefined;
  if (flags.keyId && azureKeyFlags) throw new Error('give --key-id, or --keyvault-name with --key-name (and --key-version), not both');
  let key: KeyRef;
  if (flags.keyId) key = parseKeyId(flags.keyId);
  else if (flags.keyvaultName && flags.keyName) key = keyRefFromAzureFlags({ keyvaultName: flags.keyvaultName, keyName: flags.keyName, keyVersion: flags.keyVersion, managedHsm: flags.managedHsm ?? false }, cloud);
  else throw new Error('no key: give --key-id https://<vault>/keys/<name>[/<version>], or --keyvault-name and --key-name');

  const host = new URL(key.vaultUrl).hostname;
  const cloudVault = host.endsWith(`.${cloud.vaultSuffix}`);
  const timeoutMs = duration('--timeout', flags.timeout ?? DEFAULT_KMS_TIMEOUT);
  const healthIntervalMs = duration('--health-interval', flags.healthInterval ?? DEFAULT_HEALTH_INTERVAL);
  if (healthIntervalMs < 1000) throw new Error('--health-interval must be at least 1s');
  const metricsAddr = flags.metricsAddr ?? (flags.healthzPort ? `:${flags.healthzPort}` : undefined);
  return {
    listen: parseListenAddress(flags.listen ?? flags.listenAddr ?? DEFAULT_KMS_LISTEN),
    key,
    cloud,
    identity: chooseIdentity(azureConfig, { userAssignedIdentityId: flags.userAssignedIdentityId, useManagedIdentity: flags.useManagedIdentity ?? false }, env),
    sdk: {
      ...(flags.authorityHost ? { authorityHost: flags.authorityHost } : {}),
      ...(flags.caFile ? { caPem: await readFile(flags.caFile, 'utf8') } : {}),
      allowedVaultOrigins: [key.vaultUrl],
      maxRetries: 0,
    },
    verifyChallengeResource: cloudVault,
    ...(flags.imdsEndpoint ? { imdsEndpoint: flags.imdsEndpoint } : {}),
    healthIntervalMs,
    timeoutMs,
    vaultRequestTimeoutMs: duration('--vault-request-timeout', flags.vaultRequestTimeout ?? DEFAULT_KMS_VAULT_REQUEST_TIMEOUT),
    vaultMaxAttempts: positiveInt('--vault-max-attempts', flags.vaultMaxAttempts, DEFAULT_KMS_VAULT_MAX_ATTEMPTS),
    vaultMaxInFlight: positiveInt('--vault-max-in-flight', flags.vaultMaxInFlight, DEFAULT_KMS_VAULT_MAX_IN_FLIGHT),
    ...(metricsAddr ? { metricsAddr: /^\d+$/.test(metricsAddr) ? `:${metricsAddr}` : metricsAddr } : {}),
    logLevel: flags.logLevel,
  };
}
