import type { TokenCredentialOptions } from '@azure/identity';
import { AZURE_CLOUDS } from '../providers/azure/clouds.js';

/**
 * How the Azure SDKs reach Entra ID and Key Vault from this node: one object built from the
 * driver's flags, shared by every credential and client so they all agree.
 */
export interface AzureSdkSettings {
  /** Overrides the cloud's authority host (a sovereign or local Entra endpoint). */
  authorityHost?: string;
  /** Extra PEM CA bundle trusted for Entra and Key Vault (a private CA, the dev-vault CA). */
  caPem?: string;
  /** Vault origins allowed through `vaultUri` besides the cloud's own vault domain. */
  allowedVaultOrigins: readonly string[];
  /** Cloud environment files (AzureStackCloud) classes may name with `cloudEnvFileName`. */
  allowedCloudEnvFiles?: readonly string[];
  /** Per-request retry policy; the driver owns retries, so they stay short. */
  maxRetries: number;
}

/** Retry and TLS options every SDK client and credential of the driver shares. */
export function pipelineOptions(settings: AzureSdkSettings): { retryOptions: { maxRetries: number; retryDelayInMs: number; maxRetryDelayInMs: number }; tlsOptions?: { ca: string } } {
  return {
    retryOptions: { maxRetries: settings.maxRetries, retryDelayInMs: 200, maxRetryDelayInMs: 2000 },
    ...(settings.caPem ? { tlsOptions: { ca: settings.caPem } } : {}),
  };
}

export function credentialOptions(settings: AzureSdkSettings, cloudAuthorityHost: string): TokenCredentialOptions & { disableInstanceDiscovery?: boolean } {
  return {
    authorityHost: settings.authorityHost ?? cloudAuthorityHost,
    // Instance discovery asks the public cloud's discovery host; with an overridden authority, or
    // a custom cloud's (AzureStackCloud), that host is the wrong one to ask (and unreachable from
    // a private network).
    ...(settings.authorityHost || !AZURE_CLOUDS.some((c) => c.authorityHost === cloudAuthorityHost) ? { disableInstanceDiscovery: true } : {}),
    ...pipelineOptions(settings),
  };
}
