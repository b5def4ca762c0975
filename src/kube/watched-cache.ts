import { ListWatch, Watch } from '@kubernetes/client-node';
import type { KubeConfig } from '@kubernetes/client-node';
import { PodvaultError } from '../errors/podvault-error.js';
import { describeCause } from '../errors/describe-cause.js';
import type { Logger } from '../log.js';
import { LIST_PAGE_SIZE } from './bounded-list.js';

/**
 * What a cache holds for one object: the few fields podvault uses (`value`), the error that names
 * a malformed object, or nothing (`uncached`: over the byte budget, read from the API when used).
 */
export type CachedEntry<T> = { kind: 'value'; value: T } | { kind: 'error'; error: PodvaultError } | { kind: 'uncached' };

/** A lookup's answer: an entry, `absent` (the live cache has no such object), or `unknown` (ask the API). */
export type CacheAnswer<T> = CachedEntry<T> | { kind: 'absent' } | { kind: 'unknown' };

/** The record kept per object: its name and version (the informer needs them) and the entry. */
interface CacheRecord<T> {
  metadata: { name: string; namespace: string; resourceVersion?: string };
  entry: CachedEntry<T>;
  bytes: number;
}

/** Bytes all caches of a driver may hold together (their records' JSON size). */
export class CacheBudget {
  used = 0;
  constructor(readonly limit: number) {}
}

export interface WatchedCacheOptions<T> {
  kubeConfig: KubeConfig;
  /** What the cache holds, for logs (`SecretProviderClasses`). */
  kind: string;
  /** The collection's watch path, e.g. `/api/v1/pods`. */
  path: string;
  fieldSelector?: string;
  /**
   * One page of the LIST (`limit`/`continue`), so a big collection never arrives in one body;
   * `limit` in the answer: the one the page was read with (smaller when a page of that many
   * objects was over the byte bound, `listPageBounded`), from which the next page grows back.
   */
  listPage(limit: number, continueToken: string | undefined): Promise<{ items: unknown[]; resourceVersion?: string; continueToken?: string; limit?: number }>;
  /** The small record of an object, as it arrives; throws a PodvaultError for a malformed one; undefined: do not cache. */
  trim(raw: unknown): T | undefined;
  budget: CacheBudget;
  /**
   * A record bigger than this is not kept (read from the API at each use), so that a few objects
   * made huge by their authors cannot spend the budget all tenants' objects share.
   */
  maxRecordBytes?: number;
  log: Logger;
  /**
   * How long lookups wait for the first LIST before asking the API directly, counted once from
   * `start()`: a first LIST that takes minutes (a big cluster, a tenant's flood of large objects)
   * must not add this wait to every lookup of every publish meanwhile.
   */
  syncWaitMs?: number;
  /** Called after each object the cache adds or updates (its first LIST's and its watch's), with the object's name. */
  onChange?: (namespace: string, name: string) => void;
}

/** Longest error message kept for a malformed object. */
const MAX_ERROR_CHARS = 1024;
const MIN_RESTART_MS = 500;
const MAX_RESTART_MS = 30_000;

/**
 * One API collection kept in memory by @kubernetes/client-node's ListWatch (LIST, then WATCH from
 * its resourceVersion; a clean end of the watch resumes it, a 410 Gone re-lists), holding per
 * object only the record `trim` makes of it: the informer's own cache stores the records, never
 * the API's objects. It answers only while it is `live` (its first LIST applied and a watch
 * stream open); `starting` waits up to `syncWaitMs` for that, `broken` (a failed LIST or watch,
 * restarted with backoff by this class: ListWatch gives up on errors other than 410) answers
 * `unknown`, so the caller reads the API directly. It never says "not found" from a cache that
 * is not live.
 */
export class WatchedCache<T> {
  private state: 'starting' | 'live' | 'broken' | 'resuming' | 'stopped' = 'starting';
  private readonly informer: ListWatch<CacheRecord<T>>;
  private readonly sizes = new Map<string, number>();
  private restartTimer?: NodeJS.Timeout;
  private restartMs = MIN_RESTART_MS;
  private overBudget = false;
  private readonly synced: Promise<void>;
  private markSynced: () => void = () => undefined;
  /** Until when lookups wait for the first LIST (set by `start`). */
  private syncDeadline = 0;

  constructor(private readonly options: WatchedCacheOptions<T>) {
    this.synced = new Promise((resolve) => (this.markSynced = resolve));
    this.informer = new ListWatch<CacheRecord<T>>(options.path, new RecordWatch(options.kubeConfig, this), () => this.listAll(), false, undefined, options.fieldSelector);
    const key = (r: CacheRecord<T>): string => `${r.metadata.namespace}/${r.metadata.name}`;
    const account = (r: CacheRecord<T>): void => {
      this.options.budget.used += r.bytes - (this.sizes.get(key(r)) ?? 0);
      this.sizes.set(key(r), r.bytes);
    };
    const changed = (r: CacheRecord<T>): void => {
      account(r);
      options.onChange?.(r.metadata.namespace, r.metadata.name);
    };
    this.informer.on('add', changed);
    this.informer.on('update', changed);
    this.informer.on('delete', (r) => {
      this.options.budget.used -= this.sizes.get(key(r)) ?? 0;
      this.sizes.delete(key(r));
    });
    this.informer.on('error', (err) => this.broken(err));
  }

  start(): void {
    this.syncDeadline = Date.now() + (this.options.syncWaitMs ?? 5000);
    void this.informer.start();
  }

  async stop(): Promise<void> {
    this.state = 'stopped';
    clearTimeout(this.restartTimer);
    await this.informer.stop();
  }

  /** The object's entry, `absent` when the live cache has none, `unknown` when it cannot tell. */
  async get(namespace: string, name: string): Promise<CacheAnswer<T>> {
    if (!(await this.isLive())) return { kind: 'unknown' };
    return this.informer.get(name, namespace)?.entry ?? { kind: 'absent' };
  }

  /** Every entry of a namespace (all namespaces when undefined); undefined when the cache cannot tell. */
  async list(namespace?: string): Promise<Array<{ namespace: string; name: string; entry: CachedEntry<T> }> | undefined> {
    if (!(await this.isLive())) return undefined;
    const records = this.informer.list(namespace);
    if (records.some((r) => r.entry.kind === 'uncached')) return undefined;
    return records.map((r) => ({ namespace: r.metadata.namespace, name: r.metadata.name, entry: r.entry }));
  }

  private async isLive(): Promise<boolean> {
    const waitMs = this.syncDeadline - Date.now();
    if (this.state === 'starting' && waitMs > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.synced, new Promise<void>((resolve) => (timer = setTimeout(resolve, waitMs)))]);
      clearTimeout(timer);
    }
    return this.state === 'live';
  }

  /** The LIST the informer starts from, page by page, each object trimmed as it arrives. */
  private async listAll(): Promise<{ metadata: { resourceVersion?: string }; items: CacheRecord<T>[] }> {
    const items: CacheRecord<T>[] = [];
    let continueToken: string | undefined;
    let resourceVersion: string | undefined;
    let pending = 0;
    let limit = LIST_PAGE_SIZE;
    do {
      const page = await this.options.listPage(limit, continueToken);
      limit = Math.min(LIST_PAGE_SIZE, (page.limit ?? limit) * 2);
      for (const raw of page.items) {
        // The informer stores (and this class accounts for) the LIST's records only once it is complete.
        const record = this.record(raw, pending);
        pending += record.bytes - (this.sizes.get(`${record.metadata.namespace}/${record.metadata.name}`) ?? 0);
        items.push(record);
      }
      continueToken = page.continueToken || undefined;
      resourceVersion = page.resourceVersion;
    } while (continueToken);
    return { metadata: { ...(resourceVersion ? { resourceVersion } : {}) }, items };
  }

  /** @internal The record of an object from the LIST or a watch event; `pending`: bytes of the LIST so far. */
  record(raw: unknown, pending = 0): CacheRecord<T> {
    const meta = (raw as { metadata?: { name?: unknown; namespace?: unknown; resourceVersion?: unknown } } | null)?.metadata;
    const metadata = {
      name: typeof meta?.name === 'string' ? meta.name : '',
      namespace: typeof meta?.namespace === 'string' ? meta.namespace : '',
      ...(typeof meta?.resourceVersion === 'string' ? { resourceVersion: meta.resourceVersion } : {}),
    };
    let entry: CachedEntry<T>;
    try {
      const value = this.options.trim(raw);
      entry = value === undefined ? { kind: 'uncached' } : { kind: 'value', value };
    } catch (err) {
      if (!(err instanceof PodvaultError)) throw err;
      // A malformed object's error lists each bad field, so its author could make it as big as the
      // object (thousands of bad keys), past the size checks a valid object meets: it is cut.
      entry = { kind: 'error', error: err.message.length > MAX_ERROR_CHARS ? new PodvaultError(err.kind, `${err.message.slice(0, MAX_ERROR_CHARS)}… (cut at ${MAX_ERROR_CHARS} characters)`) : err };
    }
    const bytes = entry.kind === 'value' ? JSON.stringify(entry.value).length : entry.kind === 'error' ? entry.error.message.length : 0;
    if (bytes > (this.options.maxRecordBytes ?? Infinity)) return { metadata, entry: { kind: 'uncached' }, bytes: 0 };
    const { budget } = this.options;
    if (budget.used + pending - (this.sizes.get(`${metadata.namespace}/${metadata.name}`) ?? 0) + bytes > budget.limit) {
      // Once per cache until it fits again, not once per object of a flood.
      if (!this.overBudget) this.options.log.warn({ cache: this.options.kind, object: `${metadata.namespace}/${metadata.name}`, limit: budget.limit }, 'API cache budget spent: objects that do not fit are read from the API at each use');
      this.overBudget = true;
      return { metadata, entry: { kind: 'uncached' }, bytes: 0 };
    }
    this.overBudget = false;
    return { metadata, entry, bytes };
  }

  /** @internal A watch stream is open: everything up to its resourceVersion is applied. */
  watching(): void {
    if (this.state === 'stopped') return;
    if (this.state !== 'live') this.options.log.info({ cache: this.options.kind, objects: this.sizes.size }, 'API cache live');
    this.state = 'live';
    this.restartMs = MIN_RESTART_MS;
    this.markSynced();
  }

  /** @internal The watch stream ended; the informer resumes (or re-lists) unless it failed. */
  watchEnded(): void {
    if (this.state === 'live') this.state = 'resuming';
  }

  private broken(err: unknown): void {
    if (this.state === 'stopped') return;
    this.state = 'broken';
    this.markSynced();
    this.options.log.warn({ cache: this.options.kind, cause: describeCause(err), retryMs: this.restartMs }, 'API cache watch failed: reading the API directly until it is back');
    clearTimeout(this.restartTimer);
    this.restartTimer = setTimeout(() => void this.informer.start(), this.restartMs);
    this.restartTimer.unref();
    this.restartMs = Math.min(MAX_RESTART_MS, this.restartMs * 2);
  }
}

/**
 * client-node's Watch, with each event's object trimmed to its record before the informer stores
 * it, and the stream's opening and end reported to the cache.
 */
class RecordWatch<T> extends Watch {
  constructor(
    kubeConfig: KubeConfig,
    private readonly cache: WatchedCache<T>,
  ) {
    super(kubeConfig);
  }

  override async watch(path: string, queryParams: Record<string, string | number | boolean | undefined>, callback: (phase: string, apiObj: unknown, watchObj?: unknown) => void, done: (err: unknown) => void): Promise<AbortController> {
    let ended = false;
    const controller = await super.watch(
      path,
      queryParams,
      (phase, object, event) => callback(phase, phase === 'ADDED' || phase === 'MODIFIED' || phase === 'DELETED' ? this.cache.record(object) : object, event),
      (err) => {
        ended = true;
        this.cache.watchEnded();
        done(err);
      },
    );
    if (!ended) this.cache.watching();
    return controller;
  }
}
