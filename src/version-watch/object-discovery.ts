import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from '../log.js';
import { listPageBounded } from '../kube/bounded-list.js';
import { parseKubeObject } from '../kube/parse-object.js';
import { SPC_GROUP, SPC_KIND, SPC_PLURAL, SPC_VERSION, secretProviderClassSchema } from '../kube/secret-provider-class.js';
import { CacheBudget, WatchedCache } from '../kube/watched-cache.js';
import { DEFAULT_FETCH_LIMITS } from '../providers/fetch-limits.js';
import { parseAzureParameters } from '../providers/azure/parameters.js';
import type { AzureCloud } from '../providers/azure/clouds.js';
import { collectionOf } from './versions-resource.js';
import type { Collection } from './versions-resource.js';

/** One (vault, collection, name) whose current version the watcher polls. */
export interface WatchedObject {
  /** The vault origin, `https://host[:port]`. */
  vaultUrl: string;
  collection: Collection;
  name: string;
}

/** What the watcher keeps of one class: its unpinned objects it may poll, and how many it may not. */
interface ClassRecord {
  objects: WatchedObject[];
  /** Objects in a vault outside the watcher's cloud domain and allow-list, or of another cloud. */
  refused: number;
}

export interface DiscoverySnapshot {
  /** Distinct objects, at most `maxObjects`, sorted by vault, collection and name. */
  objects: WatchedObject[];
  classes: number;
  /** `namespace/name` of the classes the parser refused. */
  malformed: string[];
  /** Distinct objects left out because of `maxObjects`. */
  overLimit: number;
  /** Object references refused for their vault (see ClassRecord.refused). */
  refused: number;
}

export interface ObjectDiscoveryOptions {
  kubeConfig: KubeConfig;
  /** The watcher's cloud: its identity's tokens are for this cloud's Key Vault resource only. */
  cloud: AzureCloud;
  /** `--allow-vault-uri`: origins outside the cloud's vault domain the watcher may poll (the driver's flag). */
  allowedVaultOrigins: readonly string[];
  /** `--max-objects`: most distinct objects polled per interval, whatever the classes name. */
  maxObjects: number;
  log: Logger;
  /** Bytes of class records held (default 32 MiB). */
  budgetBytes?: number;
}

/**
 * Every SecretProviderClass of the cluster (provider `azure`), watched with the same cache the
 * driver uses (LIST in bounded pages, then WATCH) and parsed with the driver's own parser
 * (parseAzureParameters: the same vault URL, cloud and limit rules), keeping per class only its
 * objects that name no `objectVersion` (a pinned version never moves). A class the parser refuses
 * is kept as its error, logged once per change naming the class, and contributes nothing: one
 * author's broken class never stops the watcher nor hides other classes' objects.
 */
export class ObjectDiscovery {
  private readonly cache: WatchedCache<ClassRecord>;
  private readonly reported = new Map<string, string>();

  constructor(private readonly options: ObjectDiscoveryOptions) {
    const path = `/apis/${SPC_GROUP}/${SPC_VERSION}/${SPC_PLURAL}`;
    this.cache = new WatchedCache<ClassRecord>({
      kubeConfig: options.kubeConfig,
      kind: 'SecretProviderClasses (version watch)',
      path,
      listPage: (limit, continueToken) => listPageBounded(options.kubeConfig, path, { limit, continueToken }),
      trim: (raw) => this.trim(raw),
      budget: new CacheBudget(options.budgetBytes ?? 32 * 1024 * 1024),
      log: options.log,
      syncWaitMs: 30_000,
    });
  }

  start(): void {
    this.cache.start();
  }

  stop(): Promise<void> {
    return this.cache.stop();
  }

  /** The objects to poll now; undefined while the class watch is not live (the caller waits). */
  async snapshot(): Promise<DiscoverySnapshot | undefined> {
    const entries = await this.cache.list();
    if (!entries) return undefined;
    const distinct = new Map<string, WatchedObject>();
    const malformed: string[] = [];
    let refused = 0;
    const seen = new Set<string>();
    for (const { namespace, name, entry } of entries) {
      const ref = `${namespace}/${name}`;
      seen.add(ref);
      if (entry.kind === 'error') {
        malformed.push(ref);
        if (this.reported.get(ref) !== entry.error.message) {
          this.reported.set(ref, entry.error.message);
          this.options.log.warn({ class: ref, problem: entry.error.message }, 'SecretProviderClass skipped by the version watch: it is malformed');
        }
        continue;
      }
      if (entry.kind !== 'value') continue;
      refused += entry.value.refused;
      for (const o of entry.value.objects) distinct.set(`${o.vaultUrl}|${o.collection}|${o.name}`, o);
    }
    for (const ref of this.reported.keys()) if (!seen.has(ref)) this.reported.delete(ref);
    const sorted = [...distinct.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, o]) => o);
    const objects = sorted.slice(0, this.options.maxObjects);
    return { objects, classes: entries.length, malformed, overLimit: sorted.length - objects.length, refused };
  }

  private trim(raw: unknown): ClassRecord {
    const spc = parseKubeObject(secretProviderClassSchema, raw, SPC_KIND);
    if (spc.spec.provider !== 'azure') return { objects: [], refused: 0 };
    const where = `SecretProviderClass ${spc.metadata.namespace ?? 'default'}/${spc.metadata.name}`;
    const params = parseAzureParameters(spc.spec.parameters, { limits: DEFAULT_FETCH_LIMITS, where });
    const objects: WatchedObject[] = [];
    let refused = 0;
    for (const o of params.objects) {
      if (o.objectVersion !== '') continue;
      if (!this.mayPoll(params.cloud, o.vault.url, o.vault.explicit)) {
        refused += 1;
        continue;
      }
      objects.push({ vaultUrl: o.vault.url, collection: collectionOf(o.objectType), name: o.objectName });
    }
    return { objects, refused };
  }

  /**
   * The driver's rule (keyvault-provider.ts): a vault named by `keyvaultName` is in the class's
   * cloud's vault domain; a `vaultUri` outside it must be on the operator's allow-list. The
   * watcher also polls only vaults of its own cloud, whose Key Vault resource its tokens are for.
   */
  private mayPoll(cloud: AzureCloud, vaultUrl: string, explicit: boolean): boolean {
    if (cloud.keyVaultResource !== this.options.cloud.keyVaultResource) return false;
    const host = new URL(vaultUrl).hostname;
    if (host.endsWith(`.${cloud.vaultSuffix}`)) return true;
    return explicit && this.options.allowedVaultOrigins.includes(vaultUrl);
  }
}
