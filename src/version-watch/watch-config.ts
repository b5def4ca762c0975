import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { DEFAULT_ROTATION_INTERVAL, parseDuration } from '../config/driver-config.js';
import type { AzureSdkSettings } from '../identity/azure-sdk-settings.js';
import { readAzureConfig } from '../kms/azure-config.js';
import { chooseIdentity } from '../kms/kms-identity.js';
import type { KmsIdentity } from '../kms/kms-identity.js';
import { findCloud } from '../providers/azure/clouds.js';
import type { AzureCloud } from '../providers/azure/clouds.js';
import { DEFAULT_LEASE_TIMINGS } from './lease-elector.js';
import { DEFAULT_VERSIONS_NAMESPACE } from './versions-resource.js';
import type { LeaseTimings } from './lease-elector.js';

export const DEFAULT_WATCH_NAMESPACE = DEFAULT_VERSIONS_NAMESPACE;
export const DEFAULT_LEASE_NAME = 'podvault-version-watch';
export const DEFAULT_MAX_REQUESTS_PER_SECOND = 20;
export const DEFAULT_MAX_OBJECTS = 10_000;

/** The flags of `podvault version-watch`, as commander hands them over. */
export interface WatchFlags {
  kubeconfig?: string;
  namespace?: string;
  leaseName?: string;
  leaseDuration?: string;
  renewDeadline?: string;
  retryPeriod?: string;
  interval?: string;
  maxRequestsPerSecond?: string;
  maxObjects?: string;
  vaultMaxInFlight?: string;
  vaultRequestTimeout?: string;
  vaultMaxAttempts?: string;
  allowVaultUri?: string[];
  cloud?: string;
  configFilePath?: string;
  userAssignedIdentityId?: string;
  useManagedIdentity?: boolean;
  caFile?: string;
  authorityHost?: string;
  identity?: string;
  metricsAddr?: string;
  logLevel: string;
}

/** One validated configuration, built at start; nothing reads flags or the environment later. */
export interface WatchConfig {
  kubeconfig?: string;
  namespace: string;
  leaseName: string;
  lease: LeaseTimings;
  /** The Lease holderIdentity: the pod name and a random suffix (a restarted pod is a new holder). */
  holderIdentity: string;
  intervalMs: number;
  maxRequestsPerSecond: number;
  maxObjects: number;
  vaultMaxInFlight: number;
  vaultRequestTimeoutMs: number;
  vaultMaxAttempts: number;
  cloud: AzureCloud;
  identity: KmsIdentity;
  sdk: AzureSdkSettings;
  metricsAddr?: string;
  logLevel: string;
}

function duration(flag: string, value: string): number {
  try {
    return parseDuration(value);
  } catch (err) {
    throw new Error(`${flag}: ${(err as Error).message}`);
  }
}

function positive(flag: string, value: string | undefined, fallback: number, integer = true): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) throw new Error(`${flag} ${JSON.stringify(value)} must be a positive ${integer ? 'integer' : 'number'}`);
  return n;
}

/**
 * The watcher's identity, needing only Key Vault Reader: a client secret from the environment
 * (AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET: never argv), else the KMS plugin's
 * choices (azure.json, a user-assigned or system-assigned managed identity, workload identity).
 */
export function chooseWatchIdentity(azureConfig: Parameters<typeof chooseIdentity>[0], flags: { userAssignedIdentityId?: string; useManagedIdentity: boolean }, env: NodeJS.ProcessEnv): KmsIdentity {
  if (!azureConfig && !flags.userAssignedIdentityId && !flags.useManagedIdentity && env.AZURE_CLIENT_SECRET && env.AZURE_CLIENT_ID && env.AZURE_TENANT_ID) {
    return { kind: 'service-principal-secret', tenantId: env.AZURE_TENANT_ID, clientId: env.AZURE_CLIENT_ID, secret: env.AZURE_CLIENT_SECRET };
  }
  return chooseIdentity(azureConfig, flags, env);
}

export async function buildWatchConfig(flags: WatchFlags, env: NodeJS.ProcessEnv): Promise<WatchConfig> {
  const cloud = findCloud(flags.cloud ?? '');
  if (!cloud) throw new Error(`--cloud ${JSON.stringify(flags.cloud)} is not one of AzurePublicCloud, AzureUSGovernmentCloud, AzureChinaCloud`);
  const lease: LeaseTimings = {
    leaseDurationMs: flags.leaseDuration ? duration('--lease-duration', flags.leaseDuration) : DEFAULT_LEASE_TIMINGS.leaseDurationMs,
    renewDeadlineMs: flags.renewDeadline ? duration('--renew-deadline', flags.renewDeadline) : DEFAULT_LEASE_TIMINGS.renewDeadlineMs,
    retryPeriodMs: flags.retryPeriod ? duration('--retry-period', flags.retryPeriod) : DEFAULT_LEASE_TIMINGS.retryPeriodMs,
  };
  if (!(lease.retryPeriodMs < lease.renewDeadlineMs && lease.renewDeadlineMs < lease.leaseDurationMs)) throw new Error('lease timings must satisfy --retry-period < --renew-deadline < --lease-duration');
  const intervalMs = duration('--interval', flags.interval ?? DEFAULT_ROTATION_INTERVAL);
  if (intervalMs < 1000) throw new Error('--interval must be at least 1s');
  const allowed = (flags.allowVaultUri ?? []).map((uri) => {
    const url = new URL(uri);
    if (url.protocol !== 'https:') throw new Error(`--allow-vault-uri ${JSON.stringify(uri)} must be an https:// origin`);
    return url.origin;
  });
  const azureConfig = flags.configFilePath ? await readAzureConfig(flags.configFilePath) : undefined;
  const pod = env.POD_NAME || hostname();
  return {
    ...(flags.kubeconfig ? { kubeconfig: flags.kubeconfig } : {}),
    namespace: flags.namespace ?? env.POD_NAMESPACE ?? DEFAULT_WATCH_NAMESPACE,
    leaseName: flags.leaseName ?? DEFAULT_LEASE_NAME,
    lease,
    holderIdentity: `${flags.identity ?? pod}_${randomBytes(4).toString('hex')}`,
    intervalMs,
    maxRequestsPerSecond: positive('--max-requests-per-second', flags.maxRequestsPerSecond, DEFAULT_MAX_REQUESTS_PER_SECOND, false),
    maxObjects: positive('--max-objects', flags.maxObjects, DEFAULT_MAX_OBJECTS),
    vaultMaxInFlight: positive('--vault-max-in-flight', flags.vaultMaxInFlight, 4),
    vaultRequestTimeoutMs: duration('--vault-request-timeout', flags.vaultRequestTimeout ?? '10s'),
    vaultMaxAttempts: positive('--vault-max-attempts', flags.vaultMaxAttempts, 4),
    cloud,
    identity: chooseWatchIdentity(azureConfig, { ...(flags.userAssignedIdentityId ? { userAssignedIdentityId: flags.userAssignedIdentityId } : {}), useManagedIdentity: flags.useManagedIdentity ?? false }, env),
    sdk: {
      ...(flags.authorityHost ? { authorityHost: flags.authorityHost } : {}),
      ...(flags.caFile ? { caPem: await readFile(flags.caFile, 'utf8') } : {}),
      allowedVaultOrigins: allowed,
      maxRetries: 0,
    },
    ...(flags.metricsAddr ? { metricsAddr: flags.metricsAddr } : {}),
    logLevel: flags.logLevel,
  };
}
