import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { PodInfo } from '../identity/pod-info.js';
import type { PublishArgs } from './client.js';
import { SERVICE_ACCOUNT_TOKENS_KEY } from './redact.js';
import { CLASS_KEY, EPHEMERAL_KEY, POD_NAME_KEY, POD_NAMESPACE_KEY, POD_UID_KEY, SERVICE_ACCOUNT_KEY } from './publish-request.js';

export interface EphemeralVolume {
  volumeId: string;
  targetPath: string;
  request: PublishArgs;
}

export interface EphemeralVolumeSpec {
  kubeletDir: string;
  pod: PodInfo;
  volumeName: string;
  className: string;
  /** nodePublishSecretRef contents. */
  secrets?: Record<string, string>;
  /** Service-account tokens by audience, as CSIDriver `tokenRequests` makes the kubelet send them. */
  tokens?: Record<string, string>;
  readOnly?: boolean;
  /** The pod's `securityContext.fsGroup`, sent as `volume_mount_group` (CSIDriver fsGroupPolicy File). */
  mountGroup?: string;
}

/**
 * The NodePublishVolume request the kubelet builds for a pod's inline CSI volume with
 * `podInfoOnMount: true`: volume id `csi-<sha256(pod uid + volume name)>`, target
 * `<kubelet>/pods/<uid>/volumes/kubernetes.io~csi/<volume>/mount`, a mount capability, the pod
 * keys in the volume context (see shared/notes/kubelet-contract.md). Used wherever podvault plays
 * the kubelet's part: the demo, the FlexVolume shim, tests and benchmarks.
 */
export function ephemeralVolume(spec: EphemeralVolumeSpec): EphemeralVolume {
  const volumeId = `csi-${createHash('sha256').update(spec.pod.uid + spec.volumeName).digest('hex')}`;
  const targetPath = join(spec.kubeletDir, 'pods', spec.pod.uid, 'volumes', 'kubernetes.io~csi', spec.volumeName, 'mount');
  return {
    volumeId,
    targetPath,
    request: {
      volumeId,
      targetPath,
      volumeCapability: { mount: { fsType: '', ...(spec.mountGroup === undefined ? {} : { volumeMountGroup: spec.mountGroup }) }, accessMode: { mode: 'SINGLE_NODE_WRITER' } },
      readonly: spec.readOnly ?? true,
      secrets: spec.secrets ?? {},
      volumeContext: {
        [CLASS_KEY]: spec.className,
        [POD_NAME_KEY]: spec.pod.name,
        [POD_NAMESPACE_KEY]: spec.pod.namespace,
        [POD_UID_KEY]: spec.pod.uid,
        [SERVICE_ACCOUNT_KEY]: spec.pod.serviceAccount,
        [EPHEMERAL_KEY]: 'true',
        ...(spec.tokens ? { [SERVICE_ACCOUNT_TOKENS_KEY]: JSON.stringify(Object.fromEntries(Object.entries(spec.tokens).map(([aud, token]) => [aud, { token, expirationTimestamp: new Date(Date.now() + 3600_000).toISOString() }]))) } : {}),
      },
    },
  };
}
