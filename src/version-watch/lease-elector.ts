import { ApiException, CustomObjectsApi } from '@kubernetes/client-node';
import type { KubeConfig } from '@kubernetes/client-node';
import { z } from 'zod';
import { describeCause } from '../errors/describe-cause.js';
import type { Logger } from '../log.js';
import { sleep } from '../providers/azure/host-limiter.js';

const LEASE_GROUP = 'coordination.k8s.io';
const LEASE_VERSION = 'v1';
const LEASE_PLURAL = 'leases';

export interface LeaseTimings {
  /** How long a holder's lease lasts after its last renewal, as the others observe it (client-go: 15 s). */
  leaseDurationMs: number;
  /** The leader gives up when it could not renew for this long; shorter than the lease (client-go: 10 s). */
  renewDeadlineMs: number;
  /** Between two attempts to acquire or renew (client-go: 2 s). */
  retryPeriodMs: number;
}

export const DEFAULT_LEASE_TIMINGS: LeaseTimings = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 };

export interface LeaseElectorOptions extends LeaseTimings {
  kubeConfig: KubeConfig;
  namespace: string;
  name: string;
  /** This replica's holderIdentity (the pod name, plus a random suffix so a restart is a new holder). */
  identity: string;
  log: Logger;
  /** Called when this replica became the leader; `signal` aborts the moment it stops being one. */
  onStartedLeading(signal: AbortSignal): void;
  /** Called after `signal` aborted. */
  onStoppedLeading?(): void;
}

const leaseSchema = z.object({
  metadata: z.object({ resourceVersion: z.string().optional() }).passthrough(),
  spec: z
    .object({
      holderIdentity: z.string().nullish(),
      leaseDurationSeconds: z.number().int().nullish(),
      acquireTime: z.string().nullish(),
      renewTime: z.string().nullish(),
      leaseTransitions: z.number().int().nullish(),
    })
    .default({}),
});
type LeaseSpec = z.infer<typeof leaseSchema>['spec'];

/**
 * A MicroTime as the API server writes one: RFC 3339 with six fractional digits. The Lease is
 * written as plain JSON through CustomObjectsApi because client-node's typed CoordinationV1Api
 * passes a V1MicroTime Date through JSON.stringify (three digits), which the API server's
 * MicroTime parser (Go's time.Parse with RFC3339Micro: exactly six) would refuse.
 */
function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

/**
 * Leader election on a `coordination.k8s.io/v1` Lease, with client-go's leaderelection semantics
 * (@kubernetes/client-node 1.x ships none): every `retryPeriod` each replica reads the Lease; a
 * follower takes it over only when its record (holder, renewTime) has not changed for
 * `leaseDuration` as measured by the follower's own clock since it last saw it change (so clock
 * skew between replicas does not matter), or when it has no holder; the leader renews it
 * (`renewTime`). Every write is a PUT carrying the resourceVersion read, so of two replicas acting
 * at once one gets 409 Conflict and retries at its next period. A leader that could not renew for
 * `renewDeadline` stops at once (its signal aborts) — before any follower may take over, since
 * `renewDeadline < leaseDuration` — and so does one that reads another holder in the Lease. On `stop()` a leader releases the Lease (empty holder,
 * leaseDurationSeconds 1) so the other replica takes over without waiting.
 */
export class LeaseElector {
  private readonly api: CustomObjectsApi;
  private observed?: { holder: string; renewTime: string; at: number };
  private leading?: { controller: AbortController; lastRenew: number };
  private stopped = false;
  private loop?: Promise<void>;
  private readonly wake = new AbortController();

  constructor(private readonly options: LeaseElectorOptions) {
    if (!(options.renewDeadlineMs < options.leaseDurationMs)) throw new Error('the renew deadline must be shorter than the lease duration');
    if (!(options.retryPeriodMs < options.renewDeadlineMs)) throw new Error('the retry period must be shorter than the renew deadline');
    this.api = options.kubeConfig.makeApiClient(CustomObjectsApi);
  }

  /** True while this replica holds the Lease and renewed it within the renew deadline. */
  isLeader(): boolean {
    return this.leading !== undefined && Date.now() - this.leading.lastRenew < this.options.renewDeadlineMs;
  }

  start(): void {
    this.loop = this.run();
  }

  /** Stop competing; a leader stops leading and releases the Lease. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake.abort();
    await this.loop;
    if (this.leading) {
      this.stepDown('stopping');
      await this.release().catch((err: unknown) => this.options.log.warn({ lease: this.options.name, cause: describeCause(err) }, 'could not release the lease'));
    }
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const outcome = await this.tryAcquireOrRenew().catch((err: unknown): 'failed' => {
        this.options.log.debug({ lease: this.options.name, cause: describeCause(err) }, 'lease attempt failed');
        return 'failed';
      });
      if (this.stopped) return;
      const now = Date.now();
      if (outcome === 'held' && this.leading) this.leading.lastRenew = now;
      else if (outcome === 'held') this.startLeading(now);
      else if (outcome === 'taken') this.stepDown('another replica holds the lease');
      else if (this.leading && now - this.leading.lastRenew >= this.options.renewDeadlineMs) this.stepDown('could not renew within the renew deadline');
      await sleep(this.options.retryPeriodMs, this.wake.signal).catch(() => undefined);
    }
  }

  private startLeading(now: number): void {
    const controller = new AbortController();
    this.leading = { controller, lastRenew: now };
    this.options.log.info({ lease: this.options.name, identity: this.options.identity }, 'became the leader');
    this.options.onStartedLeading(controller.signal);
  }

  private stepDown(why: string): void {
    const leading = this.leading;
    if (!leading) return;
    this.leading = undefined;
    leading.controller.abort(new Error(`lost the lease: ${why}`));
    this.options.log.warn({ lease: this.options.name, identity: this.options.identity, why }, 'stopped leading');
    this.options.onStoppedLeading?.();
  }

  /**
   * One attempt, client-go's tryAcquireOrRenew: `held` when this replica holds the Lease after it,
   * `taken` when another holder's lease is valid (a leader seeing this stops at once), `failed`
   * when the write lost a race (409) and the next period tries again.
   */
  private async tryAcquireOrRenew(): Promise<'held' | 'taken' | 'failed'> {
    const { namespace, name, identity } = this.options;
    const now = Date.now();
    const durationSeconds = Math.max(1, Math.ceil(this.options.leaseDurationMs / 1000));
    let current: z.infer<typeof leaseSchema> | undefined;
    try {
      current = leaseSchema.parse(await this.withTimeout(this.api.getNamespacedCustomObject({ group: LEASE_GROUP, version: LEASE_VERSION, namespace, plural: LEASE_PLURAL, name })));
    } catch (err) {
      if (!(err instanceof ApiException && err.code === 404)) throw err;
    }
    if (!current) {
      const spec: LeaseSpec = { holderIdentity: identity, leaseDurationSeconds: durationSeconds, acquireTime: microTime(now), renewTime: microTime(now), leaseTransitions: 0 };
      return this.write('create', { apiVersion: `${LEASE_GROUP}/${LEASE_VERSION}`, kind: 'Lease', metadata: { name, namespace }, spec }, spec, now);
    }
    const spec = current.spec;
    const holder = spec.holderIdentity ?? '';
    const renewTime = spec.renewTime ?? '';
    if (!this.observed || this.observed.holder !== holder || this.observed.renewTime !== renewTime) this.observed = { holder, renewTime, at: now };
    const heldElsewhere = holder !== '' && holder !== identity;
    const theirDurationMs = (spec.leaseDurationSeconds ?? durationSeconds) * 1000;
    if (heldElsewhere && this.observed.at + theirDurationMs > now) return 'taken';
    const mine = holder === identity;
    const next: LeaseSpec = {
      holderIdentity: identity,
      leaseDurationSeconds: durationSeconds,
      acquireTime: mine && spec.acquireTime ? spec.acquireTime : microTime(now),
      renewTime: microTime(now),
      leaseTransitions: (spec.leaseTransitions ?? 0) + (mine ? 0 : 1),
    };
    if (!mine) this.options.log.info({ lease: name, previousHolder: holder || '(none)' }, 'taking over the lease');
    return this.write('replace', { apiVersion: `${LEASE_GROUP}/${LEASE_VERSION}`, kind: 'Lease', metadata: { ...current.metadata, name, namespace }, spec: next }, next, now);
  }

  /** Create or replace the Lease; `failed` on 409 Conflict (another replica wrote first). */
  private async write(how: 'create' | 'replace', body: object, spec: LeaseSpec, now: number): Promise<'held' | 'failed'> {
    const { namespace, name } = this.options;
    try {
      const request = { group: LEASE_GROUP, version: LEASE_VERSION, namespace, plural: LEASE_PLURAL, body };
      await this.withTimeout(how === 'create' ? this.api.createNamespacedCustomObject(request) : this.api.replaceNamespacedCustomObject({ ...request, name }));
    } catch (err) {
      if (err instanceof ApiException && err.code === 409) return 'failed';
      throw err;
    }
    this.observed = { holder: spec.holderIdentity ?? '', renewTime: spec.renewTime ?? '', at: now };
    return 'held';
  }

  /** client-go's release: no holder, a 1 s lease, so a follower acquires at its next attempt. */
  private async release(): Promise<void> {
    const { namespace, name, identity } = this.options;
    const current = leaseSchema.parse(await this.withTimeout(this.api.getNamespacedCustomObject({ group: LEASE_GROUP, version: LEASE_VERSION, namespace, plural: LEASE_PLURAL, name })));
    if (current.spec.holderIdentity !== identity) return;
    const now = microTime(Date.now());
    const spec: LeaseSpec = { ...current.spec, holderIdentity: '', leaseDurationSeconds: 1, acquireTime: now, renewTime: now };
    await this.withTimeout(this.api.replaceNamespacedCustomObject({ group: LEASE_GROUP, version: LEASE_VERSION, namespace, plural: LEASE_PLURAL, name, body: { apiVersion: `${LEASE_GROUP}/${LEASE_VERSION}`, kind: 'Lease', metadata: { ...current.metadata, name, namespace }, spec } }));
    this.options.log.info({ lease: name }, 'released the lease');
  }

  /** An API call that takes longer than the retry period counts as failed (it cannot renew in time). */
  private async withTimeout<T>(call: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer from the API server within ${this.options.renewDeadlineMs} ms`)), this.options.renewDeadlineMs);
    });
    try {
      return await Promise.race([call, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}
