import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { KeyVaultKey } from '@azure/keyvault-keys';
import { describeCause } from '../errors/describe-cause.js';
import { PodvaultError } from '../errors/podvault-error.js';
import type { Logger } from '../log.js';
import type { KeyRef } from './key-ref.js';
import { kmsKeyId, versionedKeyId } from './key-ref.js';
import type { KeyVaultWrapper } from './key-vault-wrapper.js';
import type { KmsMetrics } from './kms-metrics.js';

/** The key version Encrypt uses, as the last round trip found it. */
export interface KeyState {
  version: string;
  /** `https://<vault>/keys/<name>/<version>`. */
  versionedKid: string;
  /** The KMS key_id: SHA-256 of `versionedKid`. */
  keyId: string;
  key?: KeyVaultKey;
}

/** After a failed round trip the next one comes this soon (kube-apiserver polls every 10 s when unhealthy). */
const RETRY_WHEN_UNHEALTHY_MS = 10_000;

/**
 * The background health round trip: every `intervalMs` (and at start) the current key version
 * is read (getKey, versionless keys only), a random 32-byte probe is wrapped and unwrapped with it
 * and compared. Status answers from the result and never calls the vault, so kube-apiserver's
 * polling (once a minute, every 10 s when unhealthy) costs no vault calls. A key rotated in Key
 * Vault shows as a new key_id after the next round trip; a failing vault turns healthz to the
 * failure's message (vault, key, HTTP status; never a value) at once, and a round trip that has
 * not succeeded for two intervals turns it stale.
 */
export class KeyHealth {
  private state?: KeyState;
  private healthz = 'starting: no round trip with Key Vault yet';
  private lastOk = 0;
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private running?: Promise<void>;

  constructor(
    private readonly wrapper: KeyVaultWrapper,
    private readonly key: KeyRef,
    private readonly intervalMs: number,
    private readonly timeoutMs: number,
    private readonly metrics: KmsMetrics,
    private readonly log: Logger,
  ) {}

  /** Run the first round trip now (awaited), then keep checking in the background. */
  async start(): Promise<void> {
    await this.checkNow();
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /** The key Encrypt wraps with; undefined until a round trip has succeeded once. */
  current(): KeyState | undefined {
    return this.state;
  }

  /** What Status reports. */
  status(): { healthz: string; keyId: string } {
    const stale = this.lastOk > 0 && this.healthz === 'ok' && Date.now() - this.lastOk > 2 * this.intervalMs + this.timeoutMs;
    const healthz = stale ? `no successful Key Vault round trip for ${Math.round((Date.now() - this.lastOk) / 1000)} s` : this.healthz;
    return { healthz, keyId: this.state?.keyId ?? '' };
  }

  /** One round trip (concurrent callers share it). */
  checkNow(): Promise<void> {
    this.running ??= this.roundTrip().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private schedule(): void {
    if (this.stopped) return;
    const delay = this.healthz === 'ok' ? this.intervalMs : Math.min(this.intervalMs, RETRY_WHEN_UNHEALTHY_MS);
    this.timer = setTimeout(() => {
      void this.checkNow().finally(() => this.schedule());
    }, delay);
    this.timer.unref();
  }

  private async roundTrip(): Promise<void> {
    const controller = new AbortController();
    const call = { signal: controller.signal, deadline: Date.now() + this.timeoutMs };
    const timer = setTimeout(() => controller.abort(), this.timeoutMs + 500);
    try {
      const { version, key } = await this.wrapper.currentKey(call);
      // The version is known before the probe: if the probe is refused (the identity may read
      // the key but not wrap with it), Encrypt still tries and fails with Key Vault's refusal.
      const versionedKid = versionedKeyId(this.key, version);
      if (this.state?.version !== version) {
        this.log.info({ version, keyId: kmsKeyId(versionedKid), previous: this.state?.version }, this.state ? 'key version changed: new key_id' : 'key version in use');
        this.metrics.setKeyVersion(version, kmsKeyId(versionedKid));
      }
      this.state = { version, versionedKid, keyId: kmsKeyId(versionedKid), ...(key ? { key } : {}) };
      const probe = randomBytes(32);
      const wrapped = await this.wrapper.wrap(version, probe, call, key);
      const back = await this.wrapper.unwrap(version, wrapped, call);
      if (back.length !== probe.length || !timingSafeEqual(back, probe)) throw new PodvaultError('internal', `key ${this.key.name} version ${version}: the unwrapped probe differs from the wrapped one`);
      if (this.healthz !== 'ok') this.log.info({ version }, 'Key Vault round trip succeeded: healthy');
      this.healthz = 'ok';
      this.lastOk = Date.now();
      this.metrics.healthChecks.inc({ result: 'ok' });
      this.metrics.healthy.set(1);
    } catch (err) {
      const reason = err instanceof PodvaultError ? err.message : 'internal error (see the plugin log)';
      const healthz = `Key Vault round trip failed: ${reason}`;
      if (healthz !== this.healthz) this.log.warn({ cause: describeCause(err) }, healthz);
      this.healthz = healthz;
      this.metrics.healthChecks.inc({ result: 'failed' });
      this.metrics.healthy.set(0);
    } finally {
      clearTimeout(timer);
    }
  }
}
