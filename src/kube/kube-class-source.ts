import { ApiException, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { notFound, unavailable } from '../errors/podvault-error.js';
import { parseKubeObject } from './parse-object.js';
import { SPC_GROUP, SPC_KIND, SPC_PLURAL, SPC_VERSION, classNotFoundMessage, secretProviderClassSchema } from './secret-provider-class.js';
import type { ClassSource, SecretProviderClass } from './secret-provider-class.js';
import type { WatchedCache } from './watched-cache.js';

/** Load in-cluster config, or the given kubeconfig file. */
export function loadKubeConfig(kubeconfigPath?: string): KubeConfig {
  const kc = new KubeConfig();
  if (kubeconfigPath) kc.loadFromFile(kubeconfigPath);
  else kc.loadFromCluster();
  return kc;
}

/**
 * SecretProviderClass objects from the Kubernetes API with @kubernetes/client-node: from the
 * watch-backed cache when it holds the class, else (not live yet, watch broken, not cached, or
 * absent: the cache never says "not found" itself) read with a GET.
 */
export class KubeClassSource implements ClassSource {
  private readonly api: CustomObjectsApi;

  constructor(
    private readonly kubeConfig: KubeConfig,
    private readonly cache?: WatchedCache<SecretProviderClass>,
  ) {
    this.api = kubeConfig.makeApiClient(CustomObjectsApi);
  }

  get description(): string {
    return `Kubernetes API ${this.kubeConfig.getCurrentCluster()?.server ?? '(unknown server)'}`;
  }

  async get(namespace: string, name: string): Promise<SecretProviderClass> {
    const cached = await this.cache?.get(namespace, name);
    if (cached?.kind === 'value') return cached.value;
    if (cached?.kind === 'error') throw cached.error;
    let body: unknown;
    try {
      body = await this.api.getNamespacedCustomObject({ group: SPC_GROUP, version: SPC_VERSION, namespace, plural: SPC_PLURAL, name });
    } catch (err) {
      if (err instanceof ApiException && err.code === 404) throw notFound(classNotFoundMessage(namespace, name), err);
      const code = err instanceof ApiException ? ` (HTTP ${err.code})` : '';
      throw unavailable(`cannot read SecretProviderClass ${JSON.stringify(name)} in namespace ${JSON.stringify(namespace)} from the Kubernetes API${code}`, err);
    }
    return parseKubeObject(secretProviderClassSchema, body, SPC_KIND);
  }
}
