import type { TokenCredential } from '@azure/identity';
import type { CertificateClient } from '@azure/keyvault-certificates';
import type { KeyClient } from '@azure/keyvault-keys';
import { SecretClient } from '@azure/keyvault-secrets';
import { createDefaultHttpClient } from '@azure/core-rest-pipeline';
import type { HttpClient, PipelinePolicy } from '@azure/core-rest-pipeline';
import { pipelineOptions } from '../identity/azure-sdk-settings.js';
import type { AzureSdkSettings } from '../identity/azure-sdk-settings.js';
import type { Logger } from '../log.js';
import { keyVaultOnly } from '../providers/azure/vault-clients.js';
import { HostLimiters, ThrottledError } from '../providers/azure/host-limiter.js';
import { withRetries } from '../providers/azure/retry-policy.js';
import type { AzureCloud } from '../providers/azure/clouds.js';
import type { TokenBucket } from './token-bucket.js';
import type { WatchedObject } from './object-discovery.js';
import type { UnavailableReason } from './versions-resource.js';

/**
 * Pages of one secret's versions listing read at most (25 versions a page, Key Vault's largest):
 * 1,000 versions. A vault answering endless `nextLink`s stops here, the object `Error`.
 */
export const MAX_VERSION_PAGES = 40;
/** Bytes of one vault answer the watcher reads; a metadata answer is a few KiB. */
export const MAX_RESPONSE_BYTES = 256 * 1024;

/** Two versions of a secret share the newest `created` second: which is current cannot be told from metadata. */
class AmbiguousVersionError extends Error {
  override readonly name = 'AmbiguousVersionError';
  constructor() {
    super('two versions were created within the same second');
  }
}

/** What one object's poll learned: its current version, or why not. */
export type PollResult = { version: string } | { unavailable: UnavailableReason };

export interface VersionPollerOptions {
  credential: TokenCredential;
  cloud: AzureCloud;
  settings: AzureSdkSettings;
  bucket: TokenBucket;
  log: Logger;
  /** Vault requests in flight per host (the driver's host limiter). */
  maxInFlightPerHost: number;
  requestTimeoutMs: number;
  maxAttempts: number;
  /** Told every HTTP request sent to a vault (challenge and retries included), by result. */
  onRequest(result: string): void;
}

interface Clients {
  secrets: SecretClient;
  keys: () => Promise<KeyClient>;
  certificates: () => Promise<CertificateClient>;
}

/**
 * Learns objects' current versions with metadata calls only, as an identity that holds Key Vault
 * Reader: for a secret its versions listing (`GET /secrets/{name}/versions`, 25 a page; Key Vault
 * has no other call that names a secret's current version without returning its value), for a key
 * `GET /keys/{name}/` (public key and properties), for a certificate `GET /certificates/{name}/`
 * (public certificate and properties). It never calls `getSecret`. Every HTTP request takes a token
 * of the `--max-requests-per-second` bucket and goes through the vault host's limiter and the
 * provider's retry policy (429 with Retry-After pauses the host).
 */
export class VersionPoller {
  private readonly clients = new Map<string, Clients>();
  private readonly limiters: HostLimiters;
  private readonly httpClients = new Map<string, HttpClient>();
  /** HTTP requests sent to vaults so far (the poll log reports them per round). */
  requestsSent = 0;

  constructor(private readonly options: VersionPollerOptions) {
    this.limiters = new HostLimiters(options.maxInFlightPerHost, 60_000);
  }

  /** The current version of `object`, within `deadline` (epoch ms), never throwing but on abort. */
  async poll(object: WatchedObject, deadline: number, signal: AbortSignal): Promise<PollResult> {
    const limiter = this.limiters.get(new URL(object.vaultUrl).host);
    const what = `${object.collection}/${object.name} in ${object.vaultUrl}`;
    try {
      const version = await withRetries(
        (attemptSignal) => this.currentVersion(object, attemptSignal),
        limiter,
        { maxAttempts: this.options.maxAttempts, baseDelayMs: 500, maxDelayMs: 8_000, requestTimeoutMs: this.options.requestTimeoutMs, deadline, maxRetryAfterMs: 60_000 },
        signal,
        this.options.log,
        what,
      );
      return version === undefined ? { unavailable: 'NotFound' } : { version };
    } catch (err) {
      signal.throwIfAborted();
      const status = (err as { statusCode?: unknown }).statusCode;
      const reason: UnavailableReason = err instanceof AmbiguousVersionError ? 'Ambiguous' : status === 403 || status === 401 ? 'Forbidden' : status === 404 ? 'NotFound' : status === 429 || err instanceof ThrottledError ? 'Throttled' : 'Error';
      this.options.log.debug({ object: what, reason, status: typeof status === 'number' ? status : (err as Error).name }, 'version unavailable');
      return { unavailable: reason };
    }
  }

  private async currentVersion(object: WatchedObject, abortSignal: AbortSignal): Promise<string | undefined> {
    const clients = this.clientsFor(object.vaultUrl);
    if (object.collection === 'keys') return (await (await clients.keys()).getKey(object.name, { abortSignal })).properties.version;
    if (object.collection === 'certificates') return (await (await clients.certificates()).getCertificate(object.name, { abortSignal })).properties.version;
    // Key Vault's current version is the one created last; the listing's order is not documented,
    // and `created` counts whole seconds: two versions made within the newest second cannot be
    // told apart, so the object is `Ambiguous` (nodes refetch it periodically) rather than guessed.
    let best: { version: string; created: number; tied: boolean } | undefined;
    let pages = 0;
    for await (const page of clients.secrets.listPropertiesOfSecretVersions(object.name, { abortSignal }).byPage({ maxPageSize: 25 })) {
      if (++pages > MAX_VERSION_PAGES) throw new Error(`more than ${MAX_VERSION_PAGES} pages of versions`);
      for (const p of page) {
        const created = p.createdOn?.getTime() ?? 0;
        if (!p.version) continue;
        if (!best || created > best.created) best = { version: p.version, created, tied: false };
        else if (created === best.created && p.version !== best.version) best.tied = true;
      }
    }
    if (best?.tied) throw new AmbiguousVersionError();
    return best?.version;
  }

  private clientsFor(vaultUrl: string): Clients {
    let clients = this.clients.get(vaultUrl);
    if (clients) return clients;
    const { cloud, settings } = this.options;
    const credential = keyVaultOnly(this.options.credential, cloud.keyVaultResource, vaultUrl);
    const httpClient = this.httpClients.get(vaultUrl) ?? createDefaultHttpClient();
    this.httpClients.set(vaultUrl, httpClient);
    const options = {
      ...pipelineOptions(settings),
      retryOptions: { maxRetries: 0 },
      httpClient,
      additionalPolicies: [{ policy: this.meteringPolicy(), position: 'perRetry' as const }],
      disableChallengeResourceVerification: !new URL(vaultUrl).hostname.endsWith(`.${cloud.vaultSuffix}`),
    };
    let keys: Promise<KeyClient> | undefined;
    let certificates: Promise<CertificateClient> | undefined;
    clients = {
      secrets: new SecretClient(vaultUrl, credential, options),
      keys: () => (keys ??= import('@azure/keyvault-keys').then((m) => new m.KeyClient(vaultUrl, credential, options))),
      certificates: () => (certificates ??= import('@azure/keyvault-certificates').then((m) => new m.CertificateClient(vaultUrl, credential, options))),
    };
    this.clients.set(vaultUrl, clients);
    return clients;
  }

  /**
   * Every HTTP request to a vault: one token of the rate bucket first, counted by result after,
   * and an answer over MAX_RESPONSE_BYTES refused before the SDK parses it.
   */
  private meteringPolicy(): PipelinePolicy {
    return {
      name: 'podvaultVersionWatchMetering',
      sendRequest: async (request, next) => {
        await this.options.bucket.take(request.abortSignal instanceof AbortSignal ? request.abortSignal : undefined);
        this.requestsSent += 1;
        let response;
        try {
          response = await next(request);
        } catch (err) {
          this.options.onRequest((err as { code?: unknown }).code === undefined ? 'error' : String((err as { code?: unknown }).code));
          throw err;
        }
        this.options.onRequest(String(response.status));
        const length = Number(response.headers.get('content-length') ?? response.bodyAsText?.length ?? 0);
        if (length > MAX_RESPONSE_BYTES || (response.bodyAsText?.length ?? 0) > MAX_RESPONSE_BYTES) {
          throw new Error(`a vault answer of over ${MAX_RESPONSE_BYTES} bytes was refused`);
        }
        return response;
      },
    };
  }
}
