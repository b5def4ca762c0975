import type { PodInfo } from '../identity/pod-info.js';
import type { Logger } from '../log.js';
import type { ProviderFile } from '../providers/provider.js';
import { SPC_GROUP, SPC_VERSION } from './secret-provider-class.js';

export const SPCPS_PLURAL = 'secretproviderclasspodstatuses';
export const SPCPS_KIND = 'SecretProviderClassPodStatus';
/** The upstream driver's label naming the node a status belongs to. */
export const SPCPS_NODE_LABEL = 'internal.secrets-store.csi.k8s.io/node-name';

/** One object a volume holds: its id and version, never its value. */
export interface PodStatusObject {
  id: string;
  version: string;
}

/** What a SecretProviderClassPodStatus says about one mounted volume. */
export interface VolumePodStatus {
  pod: PodInfo;
  className: string;
  targetPath: string;
  objects: PodStatusObject[];
}

/**
 * Where a volume's SecretProviderClassPodStatus goes (Kubernetes mode only). Both calls settle
 * within the writer's own bound and never throw: true when the API has what they asked for,
 * false when not (already logged; the caller counts it and retries later).
 */
export interface PodStatusSink {
  write(status: VolumePodStatus, log: Logger): Promise<boolean>;
  remove(status: VolumePodStatus, log: Logger): Promise<boolean>;
}

/**
 * The object's name, as the upstream driver names it: `<pod>-<namespace>-<class>` (tooling that
 * reads these finds them by that name). Two volumes of one pod using one class share it, as there.
 */
export function podStatusName(status: Pick<VolumePodStatus, 'pod' | 'className'>): string {
  return `${status.pod.name}-${status.pod.namespace}-${status.className}`;
}

/** One entry per object id and version the files came from, sorted by id (as upstream orders them). */
export function podStatusObjects(files: readonly ProviderFile[]): PodStatusObject[] {
  const seen = new Map<string, PodStatusObject>();
  for (const f of files) seen.set(`${f.objectId}\n${f.version}`, { id: f.objectId, version: f.version });
  return [...seen.values()].sort((a, b) => (a.id === b.id ? cmp(a.version, b.version) : cmp(a.id, b.id)));
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The whole object: upstream's v1 schema, owned by the pod so it is garbage collected with it. */
export function podStatusBody(status: VolumePodStatus, nodeName: string, resourceVersion?: string): Record<string, unknown> {
  return {
    apiVersion: `${SPC_GROUP}/${SPC_VERSION}`,
    kind: SPCPS_KIND,
    metadata: {
      name: podStatusName(status),
      namespace: status.pod.namespace,
      labels: { [SPCPS_NODE_LABEL]: nodeName },
      ownerReferences: [{ apiVersion: 'v1', kind: 'Pod', name: status.pod.name, uid: status.pod.uid }],
      ...(resourceVersion ? { resourceVersion } : {}),
    },
    status: {
      podName: status.pod.name,
      secretProviderClassName: status.className,
      mounted: true,
      targetPath: status.targetPath,
      objects: status.objects,
    },
  };
}
