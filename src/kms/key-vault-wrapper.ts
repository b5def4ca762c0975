import { createDefaultHttpClient } from '@azure/core-rest-pipeline';
import type { TokenCredential } from '@azure/identity';
import { CryptographyClient, KeyClient } from '@azure/keyvault-keys';
import type { KeyVaultKey } from '@azure/keyvault-keys';
import { invalidArgument, PodvaultError } from '../errors/podvault-error.js';
import { pipelineOptions } from '../identity/azure-sdk-settings.js';
import type { AzureSdkSettings } from '../identity/azure-sdk-settings.js';
import type { Logger } from '../log.js';
import { keyVaultError } from '../providers/azure/errors.js';
import type { HostLimiter } from '../providers/azure/host-limiter.js';
import { withRetries } from '../providers/azure/retry-policy.js';
import { keyVaultOnly } from '../providers/azure/vault-clients.js';
import { LruCache } from '../util/lru-cache.js';
import type { KeyRef } from './key-ref.js';
import { versionedKeyId } from './key-ref.js';
import type { KmsMetrics } from './kms-metrics.js';

/** Key Vault's names are case-insensitive; an id names the same key version whatever its case. */
function sameKid(answered: unknown, expected: string): boolean {
  return typeof answered === 'string' && answered.toLowerCase() === expected.toLowerCase();
}

/** The part of the SDK's raw response the checks read: the parsed JSON body. */
interface RawAnswer {
  parsedBody?: unknown;
}

function answeredKid(raw: RawAnswer): unknown {
  const body: unknown = raw.parsedBody;
  return typeof body === 'object' && body !== null ? (body as { kid?: unknown }).kid : undefined;
}

/** The only algorithm the plugin wraps with: the one Key Vault recommends for RSA keys. */
export const WRAP_ALGORITHM = 'RSA-OAEP-256';

export interface VaultCallOptions {
  signal: AbortSignal;
  /** Epoch ms: no attempt or retry wait starts after it. */
  deadline: number;
}

export interface WrapperOptions {
  key: KeyRef;
  credential: TokenCredential;
  settings: AzureSdkSettings;
  keyVaultResource: string;
  verifyChallengeResource: boolean;
  limiter: HostLimiter;
  requestTimeoutMs: number;
  maxAttempts: number;
  metrics: KmsMetrics;
  log: Logger;
}

/**
 * Key Vault's `wrapKey`, `unwrapKey` and `getKey` for the configured key, and nothing else (so
 * "Key Vault Crypto Service Encryption User" is the role the identity needs). Every request goes
 * through the Key Vault provider's retry policy and node-wide host limiter, with the SDK's own
 * retries off, and fails as a PodvaultError whose message names the vault, the key and the HTTP
 * status, never a value.
 */
export class KeyVaultWrapper {
  private readonly keys: KeyClient;
  private readonly crypto = new LruCache<CryptographyClient>(16);
  private readonly clientOptions;
  private readonly credential: TokenCredential;

  constructor(private readonly options: WrapperOptions) {
    this.credential = keyVaultOnly(options.credential, options.keyVaultResource, options.key.vaultUrl);
    this.clientOptions = {
      ...pipelineOptions(options.settings),
      retryOptions: { maxRetries: 0 },
      httpClient: createDefaultHttpClient(),
      disableChallengeResourceVerification: !options.verifyChallengeResource,
    };
    this.keys = new KeyClient(options.key.vaultUrl, this.credential, this.clientOptions);
  }

  /** The version Encrypt should use: the pinned one, or the key's current version (one getKey). */
  async currentKey(call: VaultCallOptions): Promise<{ version: string; key?: KeyVaultKey }> {
    const { key } = this.options;
    if (key.version) return { version: key.version };
    const current = await this.run('getKey', call, (abortSignal) => this.keys.getKey(key.name, { abortSignal }));
    const version = current.properties.version;
    if (!version) throw new PodvaultError('internal', `vault ${key.vaultUrl}: key ${key.name}: Key Vault answered without a version`);
    // A hostile or wrong origin may answer with another key's id: never follow it (the wrap would
    // go to that key while the annotations name ours).
    if (!sameKid(current.id, versionedKeyId(key, version))) {
      throw new PodvaultError('internal', `vault ${key.vaultUrl}: key ${key.name}: getKey answered with key id ${JSON.stringify(String(current.id).slice(0, 200))}, not a version of this key; refused`);
    }
    if (current.keyType !== 'RSA' && current.keyType !== 'RSA-HSM') {
      throw new PodvaultError('failed-precondition', `vault ${key.vaultUrl}: key ${key.name} is ${current.keyType ?? 'of an unknown type'}; the plugin wraps with RSA-OAEP-256 and needs an RSA key`);
    }
    return { version, key: current };
  }

  async wrap(version: string, plaintext: Uint8Array, call: VaultCallOptions, known?: KeyVaultKey): Promise<Buffer> {
    const client = this.client(version, known);
    let kid: unknown;
    const onResponse = (raw: RawAnswer): void => {
      kid = answeredKid(raw);
    };
    const result = await this.run('wrapKey', call, (abortSignal) => client.wrapKey(WRAP_ALGORITHM, plaintext, { abortSignal, onResponse }), version);
    this.checkAnsweredKid('wrapKey', version, kid);
    return Buffer.from(result.result);
  }

  async unwrap(version: string, ciphertext: Uint8Array, call: VaultCallOptions): Promise<Buffer> {
    const client = this.client(version);
    let kid: unknown;
    const onResponse = (raw: RawAnswer): void => {
      kid = answeredKid(raw);
    };
    const result = await this.run('unwrapKey', call, (abortSignal) => client.unwrapKey(WRAP_ALGORITHM, ciphertext, { abortSignal, onResponse }), version);
    this.checkAnsweredKid('unwrapKey', version, kid);
    return Buffer.from(result.result);
  }

  /** The SDK reports the key id it was built with; the answer's own `kid` must name the version asked. */
  private checkAnsweredKid(operation: 'wrapKey' | 'unwrapKey', version: string, kid: unknown): void {
    const { key } = this.options;
    if (!sameKid(kid, versionedKeyId(key, version))) {
      throw new PodvaultError('internal', `vault ${key.vaultUrl}: key ${key.name} version ${version}: ${operation}: Key Vault answered for key ${JSON.stringify(String(kid).slice(0, 200))}, not the version asked for; refused`);
    }
  }

  /**
   * One client per version, built with the versioned id (the SDK reports the id it was built
   * with, not the answer's `kid`). Given the key a getKey returned, the client skips its own getKey.
   */
  private client(version: string, known?: KeyVaultKey): CryptographyClient {
    return this.crypto.getOrCreate(version, () =>
      known && known.properties.version === version
        ? new CryptographyClient(known, this.credential, this.clientOptions)
        : new CryptographyClient(versionedKeyId(this.options.key, version), this.credential, this.clientOptions),
    );
  }

  private async run<T>(operation: 'getKey' | 'wrapKey' | 'unwrapKey', call: VaultCallOptions, request: (signal: AbortSignal) => Promise<T>, version?: string): Promise<T> {
    const { key, metrics, log } = this.options;
    const what = `key ${key.name}${version ? ` version ${version}` : ''}: ${operation}`;
    const started = process.hrtime.bigint();
    try {
      return await withRetries(
        request,
        this.options.limiter,
        {
          maxAttempts: this.options.maxAttempts,
          baseDelayMs: 100,
          maxDelayMs: 500,
          requestTimeoutMs: Math.max(1, Math.min(this.options.requestTimeoutMs, call.deadline - Date.now())),
          deadline: call.deadline,
          maxRetryAfterMs: 1000,
          onAttempt: (outcome) => metrics.vaultRequests.inc({ operation, outcome: outcome === '200' ? 'ok' : outcome }),
        },
        call.signal,
        log,
        what,
      );
    } catch (err) {
      // Key Vault's 400 on unwrap: the ciphertext is not one this key version made.
      if ((err as { statusCode?: unknown }).statusCode === 400 && operation === 'unwrapKey') {
        throw invalidArgument(`vault ${key.vaultUrl}: ${what}: Key Vault refused the ciphertext (HTTP 400): it was not wrapped by this key version`, err);
      }
      const failure = keyVaultError(err, key.vaultUrl, what);
      if (failure.kind === 'permission-denied' && operation !== 'getKey' && (err as { statusCode?: unknown }).statusCode === 403) {
        throw new PodvaultError('permission-denied', `vault ${key.vaultUrl}: ${what}: HTTP 403: the identity may not ${operation} with this key; grant it Key Vault Crypto Service Encryption User on the key (or keys wrapKey and unwrapKey in an access policy)`, { cause: err });
      }
      throw failure;
    } finally {
      metrics.vaultLatency.observe({ operation }, Number(process.hrtime.bigint() - started) / 1e9);
    }
  }
}
