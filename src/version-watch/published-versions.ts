import type { KubeConfig } from '@kubernetes/client-node';
import { z } from 'zod';
import type { Logger } from '../log.js';
import { listPageBounded } from '../kube/bounded-list.js';
import { parseKubeObject } from '../kube/parse-object.js';
import { CacheBudget, WatchedCache } from '../kube/watched-cache.js';
import type { FollowedObject } from '../providers/provider.js';
import { collectionOf, isFresh, MAX_STATUS_BYTES, VOV_GROUP, VOV_KIND, VOV_PLURAL, VOV_VERSION, versionsObjectName, versionsStatusSchema } from './versions-resource.js';
import type { VersionsStatus } from './versions-resource.js';

/**
 * Bytes of VaultObjectVersions a driver holds: 8 vaults at the watcher's largest status. Past it
 * (or for one object over MAX_STATUS_BYTES) a vault's versions are not kept and its volumes
 * rotate as without the watch.
 */
export const PUBLISHED_VERSIONS_BUDGET_BYTES = 8 * MAX_STATUS_BYTES;

export interface PublishedVersionsOptions {
  kubeConfig: KubeConfig;
  /** The watcher's namespace (`--version-watch-namespace`, default `podvault`). */
  namespace: string;
  log: Logger;
  /** A vault's versions object was added or changed (its `status.vaultUri`): volumes may have moved. */
  onChange?: (vaultUrl: string) => void;
  syncWaitMs?: number;
}

const objectSchema = z.object({ metadata: z.object({ name: z.string(), namespace: z.string().optional() }).passthrough(), status: versionsStatusSchema.optional() });

/**
 * The drivers' side of the version watch (issue 12 item 2): the VaultObjectVersions of the
 * watcher's namespace, listed and watched like every API cache of the driver, keeping only their
 * status. It answers "what is this object's current version" only when it can vouch for the
 * answer; every other case answers undefined, and the caller fetches the object as it would
 * without the watch:
 *   - the cache is not live (no CRD, no RBAC, an API outage), or holds no object for the vault;
 *   - the object's `status.vaultUri` is not the vault it is named after;
 *   - the status is stale (`isFresh`: no poll written for STALE_AFTER_INTERVALS intervals);
 *   - the object is absent from `versions`, or listed in `unavailable`.
 * What it holds is names and version ids: the watcher never writes a value, and nothing here
 * decides who may read what (every value is still fetched as the pod's own identity).
 */
export class PublishedVersions {
  private readonly cache: WatchedCache<VersionsStatus>;

  constructor(private readonly options: PublishedVersionsOptions) {
    const path = `/apis/${VOV_GROUP}/${VOV_VERSION}/namespaces/${encodeURIComponent(options.namespace)}/${VOV_PLURAL}`;
    this.cache = new WatchedCache<VersionsStatus>({
      kubeConfig: options.kubeConfig,
      kind: 'VaultObjectVersions',
      path,
      listPage: (limit, continueToken) => listPageBounded(options.kubeConfig, path, { limit, continueToken }),
      trim: (raw) => parseKubeObject(objectSchema, raw, VOV_KIND).status,
      budget: new CacheBudget(PUBLISHED_VERSIONS_BUDGET_BYTES),
      maxRecordBytes: MAX_STATUS_BYTES,
      log: options.log,
      ...(options.syncWaitMs === undefined ? {} : { syncWaitMs: options.syncWaitMs }),
      onChange: (namespace, name) => void this.changed(namespace, name),
    });
  }

  start(): void {
    this.cache.start();
  }

  stop(): Promise<void> {
    return this.cache.stop();
  }

  /** The object's current version if the watch vouches for it now; undefined: fetch it. */
  async currentVersion(object: FollowedObject, now = Date.now()): Promise<string | undefined> {
    const status = await this.status(object.vaultUrl);
    if (!status || !isFresh(status, now)) return undefined;
    if (object.objectType !== 'secret' && object.objectType !== 'key' && object.objectType !== 'cert') return undefined;
    const collection = collectionOf(object.objectType);
    if (Object.hasOwn(status.unavailable[collection], object.objectName)) return undefined;
    return Object.hasOwn(status.versions[collection], object.objectName) ? status.versions[collection][object.objectName]?.version : undefined;
  }

  private async status(vaultUrl: string): Promise<VersionsStatus | undefined> {
    let origin: string;
    try {
      origin = new URL(vaultUrl).origin;
    } catch {
      return undefined;
    }
    const answer = await this.cache.get(this.options.namespace, versionsObjectName(origin));
    if (answer.kind !== 'value' || answer.value.vaultUri !== origin) return undefined;
    return answer.value;
  }

  private async changed(namespace: string, name: string): Promise<void> {
    if (namespace !== this.options.namespace || !this.options.onChange) return;
    const answer = await this.cache.get(namespace, name);
    if (answer.kind === 'value') this.options.onChange(answer.value.vaultUri);
  }
}
