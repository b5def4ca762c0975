import { ApiException, CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import type { KubeConfig } from '@kubernetes/client-node';
import { unavailable } from '../errors/podvault-error.js';
import {
  AAD_POD_IDENTITY_GROUP,
  AAD_POD_IDENTITY_VERSION,
  AZURE_IDENTITY_BINDING_PLURAL,
  AZURE_IDENTITY_PLURAL,
  azureIdentityBindingSchema,
  azureIdentitySchema,
  podSchema,
  serviceAccountSchema,
  sortBindings,
} from '../identity/crds.js';
import type { AzureIdentity, BindingList, IdentityObjects, PodObject, SecretData, ServiceAccountObject } from '../identity/crds.js';
import { parseKubeObject } from './parse-object.js';
import { trimBinding } from './kube-caches.js';
import type { KubeCaches } from './kube-caches.js';
import { forEachListed } from './bounded-list.js';
import type { CacheAnswer } from './watched-cache.js';

/**
 * Identity objects from the Kubernetes API. With `caches`, pods (of this node), service accounts,
 * bindings and identities come from watch-backed caches, at most one watch event behind the API;
 * the cache answers only what it holds: an object it lacks (a pod whose watch event has not
 * arrived yet, an identity created a moment ago), a pod of another uid, or a cache not live, is
 * read directly, and a denial for want of a binding is confirmed by a direct LIST. Secrets are
 * always read directly, at each use: their values are not kept cluster-wide in this process.
 */
export class KubeIdentityObjects implements IdentityObjects {
  private readonly core: CoreV1Api;
  private readonly custom: CustomObjectsApi;

  constructor(
    private readonly kubeConfig: KubeConfig,
    private readonly caches?: KubeCaches,
  ) {
    this.core = kubeConfig.makeApiClient(CoreV1Api);
    this.custom = kubeConfig.makeApiClient(CustomObjectsApi);
  }

  async getPod(namespace: string, name: string, uid?: string): Promise<PodObject | undefined> {
    const cached = value(await this.caches?.pods.get(namespace, name));
    if (cached && (!uid || cached.metadata.uid === uid)) return cached;
    const pod = await orUndefined(`Pod ${namespace}/${name}`, () => this.core.readNamespacedPod({ namespace, name }));
    return pod && parseKubeObject(podSchema, pod, 'Pod');
  }

  /**
   * One list of the node's pods (`fieldSelector=spec.nodeName=<node>`, RBAC `list pods`): the API
   * has no lookup by uid, and only pods on this node can be the kubelet's FlexVolume callers.
   */
  async findPodByUid(uid: string, nodeName: string): Promise<PodObject | undefined> {
    for (const { entry } of (await this.caches?.pods.list()) ?? []) {
      if (entry.kind === 'value' && entry.value.metadata.uid === uid && entry.value.spec.nodeName === nodeName) return entry.value;
    }
    // Paged with a byte bound, keeping only the match: the node's pods may be many and large.
    let found: unknown;
    await orUndefined(`the pods of node ${nodeName}`, () =>
      forEachListed(this.kubeConfig, '/api/v1/pods', `spec.nodeName=${nodeName}`, (items) => {
        found ??= items.find((p) => {
          const pod = p as { metadata?: { uid?: unknown }; spec?: { nodeName?: unknown } } | null;
          return pod?.metadata?.uid === uid && pod.spec?.nodeName === nodeName;
        });
      }),
    );
    return found === undefined ? undefined : parseKubeObject(podSchema, found, 'Pod');
  }

  async getServiceAccount(namespace: string, name: string): Promise<ServiceAccountObject | undefined> {
    const cached = value(await this.caches?.serviceAccounts.get(namespace, name));
    if (cached) return cached;
    const sa = await orUndefined(`ServiceAccount ${namespace}/${name}`, () => this.core.readNamespacedServiceAccount({ namespace, name }));
    return sa && parseKubeObject(serviceAccountSchema, sa, 'ServiceAccount');
  }

  async listBindings(namespace: string | undefined, options: { direct?: boolean } = {}): Promise<BindingList> {
    const cached = options.direct ? undefined : await this.caches?.bindings.list(namespace);
    if (cached) {
      const list: BindingList = { bindings: [], malformed: [] };
      for (const { namespace: ns, name, entry } of cached) {
        if (entry.kind === 'value') list.bindings.push(entry.value);
        else if (entry.kind === 'error') list.malformed.push({ namespace: ns || 'default', name, error: entry.error });
      }
      return list;
    }
    // Paged with a byte bound, each binding cut to what pod identity reads as its page arrives: a
    // namespace's bindings are its tenant's to make many and large, and this runs per publish.
    const path = `/apis/${AAD_POD_IDENTITY_GROUP}/${AAD_POD_IDENTITY_VERSION}/${namespace === undefined ? '' : `namespaces/${namespace}/`}${AZURE_IDENTITY_BINDING_PLURAL}`;
    const list: BindingList = { bindings: [], malformed: [] };
    await orUndefined(`AzureIdentityBindings in ${namespace ?? 'all namespaces'}`, () =>
      forEachListed(this.kubeConfig, path, undefined, (items) => {
        const page = sortBindings(items, (item) => trimBinding(parseKubeObject(azureIdentityBindingSchema, item, 'AzureIdentityBinding')));
        list.bindings.push(...page.bindings);
        list.malformed.push(...page.malformed);
      }),
    );
    return list;
  }

  async getIdentity(namespace: string, name: string): Promise<AzureIdentity | undefined> {
    const cached = value(await this.caches?.identities.get(namespace, name));
    if (cached) return cached;
    const body = await orUndefined(`AzureIdentity ${namespace}/${name}`, () =>
      this.custom.getNamespacedCustomObject({ group: AAD_POD_IDENTITY_GROUP, version: AAD_POD_IDENTITY_VERSION, namespace, plural: AZURE_IDENTITY_PLURAL, name }),
    );
    return body === undefined ? undefined : parseKubeObject(azureIdentitySchema, body, 'AzureIdentity');
  }

  async getSecret(namespace: string, name: string): Promise<SecretData | undefined> {
    const secret = await orUndefined(`Secret ${namespace}/${name}`, () => this.core.readNamespacedSecret({ namespace, name }));
    if (!secret) return undefined;
    const data: Record<string, Buffer> = {};
    for (const [k, v] of Object.entries(secret.data ?? {})) data[k] = Buffer.from(v, 'base64');
    return data;
  }
}

/** A cached object; a malformed one throws the error naming it; undefined: read the API. */
function value<T>(answer: CacheAnswer<T> | undefined): T | undefined {
  if (answer?.kind === 'error') throw answer.error;
  return answer?.kind === 'value' ? answer.value : undefined;
}

/** The object, undefined on 404, UNAVAILABLE (retried by the kubelet) on any other failure. */
async function orUndefined<T>(what: string, read: () => Promise<T>): Promise<T | undefined> {
  try {
    return await read();
  } catch (err) {
    if (err instanceof ApiException && err.code === 404) return undefined;
    const code = err instanceof ApiException ? ` (HTTP ${err.code})` : '';
    throw unavailable(`cannot read ${what} from the Kubernetes API${code}`, err);
  }
}
