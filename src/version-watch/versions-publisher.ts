import { ApiException, CustomObjectsApi } from '@kubernetes/client-node';
import type { KubeConfig } from '@kubernetes/client-node';
import { describeCause } from '../errors/describe-cause.js';
import type { Logger } from '../log.js';
import type { PollResult } from './version-poller.js';
import type { WatchedObject } from './object-discovery.js';
import { COLLECTIONS, MAX_STATUS_BYTES, VOV_API_VERSION, VOV_GROUP, VOV_KIND, VOV_PLURAL, VOV_VERSION, versionsObjectName, versionsStatusSchema } from './versions-resource.js';
import type { VersionsStatus } from './versions-resource.js';

export interface VersionsPublisherOptions {
  kubeConfig: KubeConfig;
  namespace: string;
  intervalMs: number;
  /** Written into `status.writer`. */
  identity: string;
  /** Checked right before every write: a replica that is not the leader (any more) writes nothing. */
  mayWrite(): boolean;
  log: Logger;
  /** Told every write attempt, by result (`changed`, `heartbeat`, `failed`, `too-large`). */
  onWrite(result: string): void;
}

interface Written {
  status: VersionsStatus;
  at: number;
}

const emptyCollections = <T>(): Record<(typeof COLLECTIONS)[number], Record<string, T>> => ({ secrets: {}, keys: {}, certificates: {} });

/**
 * Writes one VaultObjectVersions per vault (status subresource) after each poll: at once when a
 * version moved or an object became (un)available, else as a heartbeat when the last write is one
 * interval old, so that an unchanged vault costs one small write per interval and nodes can tell
 * a live watch from a stale one (no write for 3 intervals). The object is created without status
 * the first time; only its status is written afterwards.
 */
export class VersionsPublisher {
  private readonly api: CustomObjectsApi;
  private readonly written = new Map<string, Written>();
  private readonly tooLarge = new Set<string>();

  constructor(private readonly options: VersionsPublisherOptions) {
    this.api = options.kubeConfig.makeApiClient(CustomObjectsApi);
  }

  /** Forget what was written: a replica that (again) became the leader starts from the API's objects. */
  reset(): void {
    this.written.clear();
  }

  /**
   * The status one vault's poll results make, given the one written before (for `since`, and to
   * tell a change from a heartbeat). The first time after `reset`, that is the object in the API,
   * as the previous leader left it: a new leader keeps `since` and writes nothing it need not.
   */
  async statusFor(vaultUrl: string, results: ReadonlyArray<{ object: WatchedObject; result: PollResult }>, now: number): Promise<VersionsStatus> {
    if (!this.written.has(vaultUrl)) await this.load(vaultUrl);
    return buildVersionsStatus(vaultUrl, results, { now, intervalMs: this.options.intervalMs, writer: this.options.identity, previous: this.written.get(vaultUrl)?.status });
  }

  private async load(vaultUrl: string): Promise<void> {
    const { namespace } = this.options;
    let object: { status?: unknown };
    try {
      object = (await this.api.getNamespacedCustomObject({ group: VOV_GROUP, version: VOV_VERSION, namespace, plural: VOV_PLURAL, name: versionsObjectName(vaultUrl) })) as typeof object;
    } catch (err) {
      if (!(err instanceof ApiException && err.code === 404)) this.options.log.warn({ vault: vaultUrl, cause: describeCause(err) }, 'could not read the published VaultObjectVersions');
      return;
    }
    const parsed = versionsStatusSchema.safeParse(object.status);
    if (parsed.success && parsed.data.vaultUri === vaultUrl) this.written.set(vaultUrl, { status: parsed.data, at: Date.parse(parsed.data.observedAt) || 0 });
  }

  /** Publish `status` when it changed or the heartbeat is due; false when nothing was written. */
  async publish(status: VersionsStatus, now: number): Promise<boolean> {
    const vaultUrl = status.vaultUri;
    const last = this.written.get(vaultUrl);
    const changed = !last || sameContent(last.status) !== sameContent(status);
    if (!changed && now - last.at < this.options.intervalMs) return false;
    const name = versionsObjectName(vaultUrl);
    const bytes = JSON.stringify(status).length;
    if (bytes > MAX_STATUS_BYTES) {
      if (!this.tooLarge.has(vaultUrl)) this.options.log.error({ vault: vaultUrl, object: name, bytes, limit: MAX_STATUS_BYTES }, 'VaultObjectVersions too large: not written; nodes fall back to periodic refetch for this vault (lower the objects per vault or --max-objects)');
      this.tooLarge.add(vaultUrl);
      this.options.onWrite('too-large');
      return false;
    }
    this.tooLarge.delete(vaultUrl);
    if (!this.options.mayWrite()) return false;
    try {
      await this.writeStatus(name, status);
    } catch (err) {
      this.options.onWrite('failed');
      this.options.log.warn({ object: name, cause: describeCause(err) }, 'could not write VaultObjectVersions');
      return false;
    }
    this.written.set(vaultUrl, { status, at: now });
    this.options.onWrite(changed ? 'changed' : 'heartbeat');
    return true;
  }

  /** PUT .../status with the resourceVersion just read; the object is created first when missing. */
  private async writeStatus(name: string, status: VersionsStatus): Promise<void> {
    const { namespace } = this.options;
    const ref = { group: VOV_GROUP, version: VOV_VERSION, namespace, plural: VOV_PLURAL };
    for (let attempt = 1; ; attempt++) {
      let current: { metadata?: { resourceVersion?: string } };
      try {
        current = (await this.api.getNamespacedCustomObject({ ...ref, name })) as typeof current;
      } catch (err) {
        if (!(err instanceof ApiException && err.code === 404)) throw err;
        current = (await this.api.createNamespacedCustomObject({ ...ref, body: { apiVersion: VOV_API_VERSION, kind: VOV_KIND, metadata: { name, namespace } } })) as typeof current;
      }
      if (!this.options.mayWrite()) return;
      const body = { apiVersion: VOV_API_VERSION, kind: VOV_KIND, metadata: { name, namespace, ...(current.metadata?.resourceVersion ? { resourceVersion: current.metadata.resourceVersion } : {}) }, status };
      try {
        await this.api.replaceNamespacedCustomObjectStatus({ ...ref, name, body });
        return;
      } catch (err) {
        if (!(err instanceof ApiException && err.code === 409) || attempt >= 3) throw err;
      }
    }
  }
}

/**
 * The status of one vault after a poll: each object's version (with `since` kept from `previous`
 * while the version is the same) or why it is unavailable; objects no class names any more drop out.
 */
export function buildVersionsStatus(
  vaultUrl: string,
  results: ReadonlyArray<{ object: WatchedObject; result: PollResult }>,
  context: { now: number; intervalMs: number; writer: string; previous?: VersionsStatus | undefined },
): VersionsStatus {
  const at = new Date(context.now).toISOString();
  const versions = emptyCollections<{ version: string; since: string }>();
  const unavailable = emptyCollections<VersionsStatus['unavailable']['secrets'][string]>();
  for (const { object, result } of results) {
    if ('version' in result) {
      const before = context.previous?.versions[object.collection][object.name];
      versions[object.collection][object.name] = { version: result.version, since: before?.version === result.version ? before.since : at };
    } else {
      unavailable[object.collection][object.name] = result.unavailable;
    }
  }
  return { vaultUri: vaultUrl, intervalSeconds: context.intervalMs / 1000, observedAt: at, writer: context.writer, versions, unavailable };
}

/** The part of a status whose change is published at once: versions and unavailability, not times. */
function sameContent(status: VersionsStatus): string {
  const versions = COLLECTIONS.map((c) => Object.entries(status.versions[c]).map(([n, e]) => `${c}/${n}=${e.version}`).sort().join(','));
  const unavailable = COLLECTIONS.map((c) => Object.entries(status.unavailable[c]).map(([n, r]) => `${c}/${n}:${r}`).sort().join(','));
  return `${versions.join(';')}|${unavailable.join(';')}`;
}
