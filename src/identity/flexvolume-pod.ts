import { invalidArgument, permissionDenied } from '../errors/podvault-error.js';
import type { Logger } from '../log.js';
import type { IdentityObjects } from './crds.js';
import type { PodInfo } from './pod-info.js';

/** The `driver` a pod's flexVolume names for podvault (`<vendor>/<driver>`, dir `podvault~keyvault`). */
export const FLEXVOLUME_DRIVER = 'podvault/keyvault';

/** The pod of a FlexVolume mount, and its `securityContext.fsGroup` as the API has it. */
export interface FlexVolumePod {
  pod: PodInfo;
  fsGroup?: number;
}

/**
 * Who a FlexVolume mount is for. The kubelet merges the volume's own `options` over the
 * `kubernetes.io/pod.*` keys it adds (its flexvolume NewOptionsForDriver), so every option is the
 * pod's to forge: a pod could name another pod and get that pod's identity. What the pod cannot
 * choose is the mount directory, `<kubelet>/pods/<uid>/volumes/podvault~keyvault/<volume>`: the
 * pod is the one with that uid among the pods scheduled to this node, read from the API, and its
 * namespace, name and service account are the API's. Its spec must also declare that volume as a
 * podvault flexVolume with `readOnly: true`: the option `kubernetes.io/readwrite` is forgeable
 * too, and a writable volume would let the pod steer the driver's root writes into it. Its
 * fsGroup comes from the same spec: the kubelet's `kubernetes.io/mounterArgs.FsGroup` option can be
 * overwritten by the pod with a gid its admission policy (e.g. an SCC's range) would refuse.
 */
export class FlexVolumePods {
  constructor(
    private readonly objects: IdentityObjects,
    private readonly nodeName: string,
  ) {}

  async find(podUid: string, volumeName: string, log: Logger): Promise<FlexVolumePod> {
    const pod = await this.objects.findPodByUid(podUid, this.nodeName);
    if (!pod) {
      log.warn({ podUid, node: this.nodeName }, 'FlexVolume mount for a pod uid that no pod on this node has');
      throw permissionDenied(`FlexVolume mount for pod uid ${podUid}: no pod with this uid runs on this node`);
    }
    const namespace = pod.metadata.namespace ?? 'default';
    const ref = `${namespace}/${pod.metadata.name}`;
    const volume = pod.spec.volumes?.find((v) => v.name === volumeName);
    if (!volume?.flexVolume || volume.flexVolume.driver !== FLEXVOLUME_DRIVER) {
      throw permissionDenied(`FlexVolume mount for pod ${ref}: the pod has no volume ${volumeName} with flexVolume.driver ${FLEXVOLUME_DRIVER}`);
    }
    if (volume.flexVolume.readOnly !== true) {
      throw invalidArgument(`pod ${ref}: volume ${volumeName} must set flexVolume readOnly: true (podvault volumes are read-only)`);
    }
    const fsGroup = pod.spec.securityContext?.fsGroup;
    return { pod: { namespace, name: pod.metadata.name, uid: podUid, serviceAccount: pod.spec.serviceAccountName || 'default' }, ...(fsGroup === undefined ? {} : { fsGroup }) };
  }
}
