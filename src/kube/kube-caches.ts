import type { KubeConfig } from '@kubernetes/client-node';
import { invalidArgument } from '../errors/podvault-error.js';
import type { Logger } from '../log.js';
import { AAD_POD_IDENTITY_GROUP, AAD_POD_IDENTITY_VERSION, AZURE_IDENTITY_BINDING_PLURAL, AZURE_IDENTITY_PLURAL, POD_IDENTITY_LABEL, azureIdentityBindingSchema, azureIdentitySchema, podSchema, serviceAccountSchema } from '../identity/crds.js';
import type { AzureIdentity, AzureIdentityBinding, PodObject, ServiceAccountObject } from '../identity/crds.js';
import { ALLOWED_OBJECTS_ANNOTATION, ALLOWED_SERVICE_ACCOUNTS_ANNOTATION } from '../identity/binding-policy.js';
import { WORKLOAD_IDENTITY_CLIENT_ID_ANNOTATION, WORKLOAD_IDENTITY_TENANT_ID_ANNOTATION } from '../identity/identity-resolver.js';
import { parametersBytes } from '../providers/fetch-limits.js';
import { parseKubeObject } from './parse-object.js';
import { SPC_GROUP, SPC_KIND, SPC_PLURAL, SPC_VERSION, secretProviderClassSchema } from './secret-provider-class.js';
import type { SecretProviderClass } from './secret-provider-class.js';
import { CacheBudget, WatchedCache } from './watched-cache.js';
import { listPageBounded } from './bounded-list.js';

/** Bytes of records all API caches of a driver hold together; past it, objects are read at use. */
export const API_CACHE_BUDGET_BYTES = 32 * 1024 * 1024;

/**
 * Largest record of an identity, service account or pod that is kept (classes are bounded by
 * --max-class-size; a binding over it is malformed, see trimBinding): ordinary ones are a few
 * hundred bytes, and without a cap 32 objects of 1 MiB (a long annotation of a key podvault
 * reads) spent the whole budget of every node.
 */
export const MAX_RECORD_BYTES = 16 * 1024;

export interface KubeCachesOptions {
  kubeConfig: KubeConfig;
  /** This node: only its pods are watched (`fieldSelector=spec.nodeName=<node>`). */
  nodeName: string;
  /** --max-class-size: a class over it is never cached (its publish fails on the limit anyway). */
  maxClassBytes: number;
  log: Logger;
  budgetBytes?: number;
  syncWaitMs?: number;
}

/**
 * The watch-backed caches of Kubernetes mode: SecretProviderClasses, AzureIdentities,
 * AzureIdentityBindings and ServiceAccounts of the cluster, and the pods of this node. Each keeps
 * only what podvault reads of an object (so a cluster of thousands of objects costs a few MiB);
 * Secrets are never cached (see docs/security.md).
 */
export class KubeCaches {
  readonly classes: WatchedCache<SecretProviderClass>;
  readonly identities: WatchedCache<AzureIdentity>;
  readonly bindings: WatchedCache<AzureIdentityBinding>;
  readonly serviceAccounts: WatchedCache<ServiceAccountObject>;
  readonly pods: WatchedCache<PodObject>;

  constructor(options: KubeCachesOptions) {
    const { kubeConfig, log } = options;
    const budget = new CacheBudget(options.budgetBytes ?? API_CACHE_BUDGET_BYTES);
    const common = { kubeConfig, budget, log, ...(options.syncWaitMs === undefined ? {} : { syncWaitMs: options.syncWaitMs }) };
    // Every LIST page is read with a byte bound (bounded-list.ts): a page's limit counts objects only.
    const page = (path: string, fieldSelector?: string) => (limit: number, continueToken: string | undefined) => listPageBounded(kubeConfig, path, { limit, continueToken, fieldSelector });

    this.classes = new WatchedCache({
      ...common,
      kind: 'SecretProviderClasses',
      path: `/apis/${SPC_GROUP}/${SPC_VERSION}/${SPC_PLURAL}`,
      listPage: page(`/apis/${SPC_GROUP}/${SPC_VERSION}/${SPC_PLURAL}`),
      trim: (raw) => {
        const spc = parseKubeObject(secretProviderClassSchema, raw, SPC_KIND);
        if (parametersBytes(spc.spec.parameters) > options.maxClassBytes) return undefined;
        // secretObjects is kept only as "present and non-empty" (the publish raises an event for it).
        const secretObjects = Array.isArray(spc.spec.secretObjects) && spc.spec.secretObjects.length > 0 ? { secretObjects: [{}] } : {};
        return { metadata: nameOf(spc.metadata), spec: { provider: spc.spec.provider, parameters: spc.spec.parameters, ...secretObjects } };
      },
    });
    this.identities = new WatchedCache({
      ...common,
      maxRecordBytes: MAX_RECORD_BYTES,
      kind: 'AzureIdentities',
      path: `/apis/${AAD_POD_IDENTITY_GROUP}/${AAD_POD_IDENTITY_VERSION}/${AZURE_IDENTITY_PLURAL}`,
      listPage: page(`/apis/${AAD_POD_IDENTITY_GROUP}/${AAD_POD_IDENTITY_VERSION}/${AZURE_IDENTITY_PLURAL}`),
      trim: (raw) => {
        const identity = parseKubeObject(azureIdentitySchema, raw, 'AzureIdentity');
        return { metadata: nameOf(identity.metadata), spec: identity.spec };
      },
    });
    this.bindings = new WatchedCache({
      ...common,
      kind: 'AzureIdentityBindings',
      path: `/apis/${AAD_POD_IDENTITY_GROUP}/${AAD_POD_IDENTITY_VERSION}/${AZURE_IDENTITY_BINDING_PLURAL}`,
      listPage: page(`/apis/${AAD_POD_IDENTITY_GROUP}/${AAD_POD_IDENTITY_VERSION}/${AZURE_IDENTITY_BINDING_PLURAL}`),
      trim: (raw) => trimBinding(parseKubeObject(azureIdentityBindingSchema, raw, 'AzureIdentityBinding')),
    });
    this.serviceAccounts = new WatchedCache({
      ...common,
      maxRecordBytes: MAX_RECORD_BYTES,
      kind: 'ServiceAccounts',
      path: '/api/v1/serviceaccounts',
      listPage: page('/api/v1/serviceaccounts'),
      trim: (raw) => {
        const sa = parseKubeObject(serviceAccountSchema, raw, 'ServiceAccount');
        return { metadata: { ...nameOf(sa.metadata), ...picked('annotations', sa.metadata.annotations, (k) => k === WORKLOAD_IDENTITY_CLIENT_ID_ANNOTATION || k === WORKLOAD_IDENTITY_TENANT_ID_ANNOTATION) } };
      },
    });
    const fieldSelector = `spec.nodeName=${options.nodeName}`;
    this.pods = new WatchedCache({
      ...common,
      maxRecordBytes: MAX_RECORD_BYTES,
      kind: `pods of node ${options.nodeName}`,
      path: '/api/v1/pods',
      fieldSelector,
      listPage: page('/api/v1/pods', fieldSelector),
      trim: (raw) => trimPod(parseKubeObject(podSchema, raw, 'Pod')),
    });
  }

  private get all(): Array<WatchedCache<unknown>> {
    return [this.classes, this.identities, this.bindings, this.serviceAccounts, this.pods] as Array<WatchedCache<unknown>>;
  }

  start(): void {
    for (const cache of this.all) cache.start();
  }

  async stop(): Promise<void> {
    await Promise.all(this.all.map((cache) => cache.stop()));
  }
}

/**
 * What pod identity reads of a binding: its name, spec and the two `podvault.dev/` annotations,
 * at most MAX_RECORD_BYTES of them, or it is malformed (in the cache and in a direct LIST alike).
 * A binding too big to keep cannot be left out of the cache as other objects are: one such
 * binding would make every publish list the bindings of its namespace from the API, or with
 * --cluster-wide-bindings those of the whole cluster.
 */
export function trimBinding(binding: AzureIdentityBinding): AzureIdentityBinding {
  const trimmed = { metadata: { ...nameOf(binding.metadata), ...picked('annotations', binding.metadata.annotations, (k) => k === ALLOWED_SERVICE_ACCOUNTS_ANNOTATION || k === ALLOWED_OBJECTS_ANNOTATION) }, spec: binding.spec };
  if (JSON.stringify(trimmed).length > MAX_RECORD_BYTES) {
    throw invalidArgument(`AzureIdentityBinding ${binding.metadata.namespace ?? 'default'}/${binding.metadata.name} is malformed: its spec and annotations ${ALLOWED_SERVICE_ACCOUNTS_ANNOTATION} and ${ALLOWED_OBJECTS_ANNOTATION} are over ${MAX_RECORD_BYTES} bytes`);
  }
  return trimmed;
}

/** What FlexVolume and pod identity read of a pod: uid, the binding label, service account, flexVolumes, fsGroup. */
function trimPod(pod: PodObject): PodObject {
  const { spec } = pod;
  const volumes = spec.volumes?.filter((v) => v.flexVolume !== undefined);
  const fsGroup = spec.securityContext?.fsGroup;
  return {
    metadata: { ...nameOf(pod.metadata), ...(pod.metadata.uid === undefined ? {} : { uid: pod.metadata.uid }), ...picked('labels', pod.metadata.labels, (k) => k === POD_IDENTITY_LABEL) },
    spec: {
      ...(spec.serviceAccountName === undefined ? {} : { serviceAccountName: spec.serviceAccountName }),
      ...(spec.nodeName === undefined ? {} : { nodeName: spec.nodeName }),
      ...(volumes?.length ? { volumes } : {}),
      ...(fsGroup === undefined ? {} : { securityContext: { fsGroup } }),
    },
  };
}

function nameOf(metadata: { name: string; namespace?: string | undefined }): { name: string; namespace?: string } {
  return { name: metadata.name, ...(metadata.namespace === undefined ? {} : { namespace: metadata.namespace }) };
}

/** `{ [field]: only the keys podvault reads }`, or nothing when none is set. */
function picked<F extends string>(field: F, from: Record<string, string> | undefined, keep: (key: string) => boolean): Partial<Record<F, Record<string, string>>> {
  const kept = Object.entries(from ?? {}).filter(([k]) => keep(k));
  return kept.length === 0 ? {} : ({ [field]: Object.fromEntries(kept) } as Partial<Record<F, Record<string, string>>>);
}
