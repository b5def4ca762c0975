import { ApiException, CoreV1Api } from '@kubernetes/client-node';
import type { KubeConfig } from '@kubernetes/client-node';
import { z } from 'zod';
import { permissionDenied, unavailable } from '../errors/podvault-error.js';
import type { Logger } from '../log.js';
import { listPageBounded } from './bounded-list.js';
import { configMapDataBytes, MAX_CONFIG_MAP_BYTES } from './config-maps.js';
import type { ConfigMapData, ConfigMapSource } from './config-maps.js';
import { parseKubeObject } from './parse-object.js';
import { CacheBudget, WatchedCache } from './watched-cache.js';

/**
 * Bytes of ConfigMap records the driver keeps, apart from the budget of its other caches: a
 * cluster's ConfigMaps are many (one `kube-root-ca.crt` per namespace) and their authors are every
 * tenant, so they must not push classes or pods out of memory.
 */
export const CONFIG_MAP_CACHE_BYTES = 8 * 1024 * 1024;
/** A ConfigMap record over this is not kept: it is read from the API at each use. */
export const MAX_CACHED_CONFIG_MAP_BYTES = 256 * 1024;

const configMapSchema = z.object({ metadata: z.object({ name: z.string().min(1), namespace: z.string().optional() }), data: z.record(z.string(), z.string()).optional() });

/**
 * ConfigMaps from the Kubernetes API with @kubernetes/client-node: a watch-backed cache of their
 * `data` (WatchedCache, as for classes), started at the first template publish so that a
 * cluster without templates never lists its ConfigMaps; until it is live, and for ConfigMaps it
 * does not hold, a GET. Only `data` is kept; ConfigMaps over MAX_CONFIG_MAP_BYTES are refused.
 */
export class KubeConfigMaps implements ConfigMapSource {
  private readonly core: CoreV1Api;
  private readonly cache: WatchedCache<ConfigMapData>;
  private started = false;

  constructor(kubeConfig: KubeConfig, log: Logger) {
    this.core = kubeConfig.makeApiClient(CoreV1Api);
    this.cache = new WatchedCache<ConfigMapData>({
      kubeConfig,
      kind: 'ConfigMaps',
      path: '/api/v1/configmaps',
      listPage: (limit, continueToken) => listPageBounded(kubeConfig, '/api/v1/configmaps', { limit, continueToken }),
      trim: (raw) => {
        const data = parseKubeObject(configMapSchema, raw, 'ConfigMap').data ?? {};
        return configMapDataBytes(data) > MAX_CONFIG_MAP_BYTES ? undefined : { data };
      },
      budget: new CacheBudget(CONFIG_MAP_CACHE_BYTES),
      maxRecordBytes: MAX_CACHED_CONFIG_MAP_BYTES,
      log,
      // Lookups never wait for the first LIST: they read the API until the cache is live.
      syncWaitMs: 0,
    });
  }

  async get(namespace: string, name: string): Promise<ConfigMapData | undefined> {
    if (!this.started) {
      this.started = true;
      this.cache.start();
    }
    const cached = await this.cache.get(namespace, name);
    if (cached.kind === 'value') return cached.value;
    if (cached.kind === 'error') throw cached.error;
    let body: unknown;
    try {
      body = await this.core.readNamespacedConfigMap({ namespace, name });
    } catch (err) {
      if (err instanceof ApiException && err.code === 404) return undefined;
      if (err instanceof ApiException && err.code === 403) throw permissionDenied(`ConfigMap ${namespace}/${name}: the driver may not read it (HTTP 403): its ClusterRole needs get, list and watch on configmaps`, err);
      const code = err instanceof ApiException ? ` (HTTP ${err.code})` : '';
      throw unavailable(`cannot read ConfigMap ${namespace}/${name} from the Kubernetes API${code}`, err);
    }
    return { data: parseKubeObject(configMapSchema, body, 'ConfigMap').data ?? {} };
  }

  async stop(): Promise<void> {
    if (this.started) await this.cache.stop();
  }
}
