import type { TokenCredential } from '@azure/identity';
import { PodvaultError } from '../errors/podvault-error.js';
import type { AzureSdkSettings } from '../identity/azure-sdk-settings.js';
import type { KeyRef } from '../kms/key-ref.js';
import { versionOf } from '../kms/key-ref.js';
import { KeyVaultWrapper } from '../kms/key-vault-wrapper.js';
import { KmsMetrics } from '../kms/kms-metrics.js';
import type { Logger } from '../log.js';
import type { AzureCloud } from '../providers/azure/clouds.js';
import { HostLimiter } from '../providers/azure/host-limiter.js';
import type { DataKeyUnwrapper, DataKeyWrapper } from './data-keys.js';
import { parseSealKey, parseVersionedKeyId } from './sealed-key-id.js';

export interface KeyVaultDataKeysOptions {
  credential: TokenCredential;
  settings: AzureSdkSettings;
  cloud: AzureCloud;
  /** Origins outside the cloud's vault domain the caller trusts (`--allow-vault`), e.g. dev-vault. */
  allowedOrigins: readonly string[];
  log: Logger;
  /** Each vault request is abandoned (and retried) after this long. */
  requestTimeoutMs?: number;
  maxAttempts?: number;
  /** The whole wrap or unwrap, retries included, ends by this long after it starts. */
  callTimeoutMs?: number;
}

/**
 * Data keys wrapped and unwrapped by Key Vault keys as the caller's identity, through the KMS
 * plugin's KeyVaultWrapper (RSA-OAEP-256, its retry policy, and its check that each answer's
 * `kid` names the version asked). A marker names its vault, so before a token is spent the origin
 * must be in the cloud's vault domain (the SDK then checks the vault's challenge) or allowed by
 * the caller: a hostile file cannot send the caller's Key Vault token to a host of its choosing.
 */
export class KeyVaultDataKeys implements DataKeyUnwrapper, DataKeyWrapper {
  private readonly wrappers = new Map<string, KeyVaultWrapper>();
  private readonly limiter = new HostLimiter(8, 1000);
  private metrics: KmsMetrics | undefined;

  constructor(private readonly options: KeyVaultDataKeysOptions) {}

  async unwrap(versionedKeyId: string, algorithm: 'RSA-OAEP-256', wrapped: Uint8Array, signal?: AbortSignal): Promise<Uint8Array> {
    const ref = parseVersionedKeyId(versionedKeyId);
    if (typeof ref === 'string') throw new PodvaultError('invalid-argument', `key id ${JSON.stringify(versionedKeyId.slice(0, 200))} ${ref}`);
    if (algorithm !== 'RSA-OAEP-256') throw new PodvaultError('invalid-argument', `algorithm ${JSON.stringify(algorithm)} is not RSA-OAEP-256`);
    return this.wrapper(ref).unwrap(ref.version, wrapped, this.call(signal));
  }

  async wrap(keyId: string, algorithm: 'RSA-OAEP-256', dataKey: Uint8Array, signal?: AbortSignal): Promise<{ versionedKeyId: string; wrapped: Uint8Array }> {
    if (algorithm !== 'RSA-OAEP-256') throw new PodvaultError('invalid-argument', `algorithm ${JSON.stringify(algorithm)} is not RSA-OAEP-256`);
    const ref = parseSealKey(keyId);
    const wrapper = this.wrapper(ref);
    const call = this.call(signal);
    // A versionless key: its current version (one getKey) wraps, and the marker names that
    // version as the vault answered it (the SDK's result keyID would be the versionless id).
    const { version, key } = ref.version ? { version: ref.version, key: undefined } : await wrapper.currentKey(call);
    const wrapped = await wrapper.wrap(version, dataKey, call, key);
    const versionedKeyId = `${ref.vaultUrl}/keys/${ref.name}/${version}`;
    if (versionOf(ref, versionedKeyId) === undefined) throw new PodvaultError('internal', `key ${keyId}: Key Vault answered version ${JSON.stringify(version.slice(0, 100))}, not a key version`);
    return { versionedKeyId, wrapped };
  }

  private call(signal?: AbortSignal): { signal: AbortSignal; deadline: number } {
    const timeout = this.options.callTimeoutMs ?? 30_000;
    return { signal: signal ? AbortSignal.any([signal, AbortSignal.timeout(timeout)]) : AbortSignal.timeout(timeout), deadline: Date.now() + timeout };
  }

  /** One wrapper (so one set of SDK clients) per vault and key name. */
  private wrapper(ref: KeyRef): KeyVaultWrapper {
    const id = `${ref.vaultUrl.toLowerCase()}/keys/${ref.name.toLowerCase()}`;
    const known = this.wrappers.get(id);
    if (known) return known;
    const { cloud, allowedOrigins } = this.options;
    const host = new URL(ref.vaultUrl).hostname;
    const inCloud = host.endsWith(`.${cloud.vaultSuffix}`);
    if (!inCloud && !allowedOrigins.some((o) => o.replace(/\/$/, '').toLowerCase() === ref.vaultUrl.toLowerCase())) {
      throw new PodvaultError('permission-denied', `vault ${ref.vaultUrl} is outside ${cloud.vaultSuffix}; podvault sends its Key Vault token there only when told to (--allow-vault ${ref.vaultUrl})`);
    }
    this.metrics ??= new KmsMetrics();
    const wrapper = new KeyVaultWrapper({
      key: { vaultUrl: ref.vaultUrl, name: ref.name },
      credential: this.options.credential,
      settings: { ...this.options.settings, allowedVaultOrigins: [ref.vaultUrl] },
      keyVaultResource: cloud.keyVaultResource,
      verifyChallengeResource: inCloud,
      limiter: this.limiter,
      requestTimeoutMs: this.options.requestTimeoutMs ?? 10_000,
      maxAttempts: this.options.maxAttempts ?? 3,
      metrics: this.metrics,
      log: this.options.log,
    });
    this.wrappers.set(id, wrapper);
    return wrapper;
  }
}
