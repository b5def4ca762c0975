import { invalidArgument } from '../errors/podvault-error.js';

/** The kubelet's directory of a FlexVolume driver `podvault/keyvault` (`<vendor>~<driver>`). */
export const FLEXVOLUME_PLUGIN_DIR = 'podvault~keyvault';
/** The kubelet's directory of CSI volumes inside a pod's volume directory. */
export const CSI_PLUGIN_DIR = 'kubernetes.io~csi';

/** Where the kubelet asks for a volume, and which pod that path belongs to. */
export interface KubeletTarget {
  kind: 'csi' | 'flexvolume';
  /** The pod uid the kubelet put in the path: chosen by the kubelet, not by the pod. */
  podUid: string;
  volumeName: string;
}

/** Pod uids are UUIDs (static pods: a 32-hex hash); volume names are DNS labels. */
const POD_UID = /^[-a-z0-9]{1,64}$/;
const VOLUME_NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/**
 * The only target shapes the kubelet uses for podvault volumes (shared/notes/kubelet-contract.md):
 *   CSI inline:  <kubelet>/pods/<uid>/volumes/kubernetes.io~csi/<volume>/mount
 *   FlexVolume:  <kubelet>/pods/<uid>/volumes/podvault~keyvault/<volume>
 * Anything else (another plugin's directory, a pod's emptyDir, `<kubelet>/pods` itself) is refused
 * before it is touched, so no caller of the socket can point the driver at a path that a pod or
 * another volume plugin owns. `target` must already be normalised and below `kubeletDir`
 * (`checkTargetPath`).
 */
export function parseKubeletTarget(field: string, target: string, kubeletDir: string): KubeletTarget {
  const root = `${kubeletDir.replace(/\/+$/, '')}/`;
  const parts = target.startsWith(root) ? target.slice(root.length).split('/') : [];
  const [pods, podUid, volumes, plugin, volumeName, last, ...rest] = parts;
  const shaped = pods === 'pods' && volumes === 'volumes' && podUid !== undefined && POD_UID.test(podUid) && volumeName !== undefined && VOLUME_NAME.test(volumeName) && rest.length === 0;
  if (shaped && plugin === CSI_PLUGIN_DIR && last === 'mount') return { kind: 'csi', podUid, volumeName };
  if (shaped && plugin === FLEXVOLUME_PLUGIN_DIR && last === undefined) return { kind: 'flexvolume', podUid, volumeName };
  throw invalidArgument(
    `${field} must be a kubelet volume path, ${root}pods/<pod uid>/volumes/${CSI_PLUGIN_DIR}/<volume>/mount (CSI) or ${root}pods/<pod uid>/volumes/${FLEXVOLUME_PLUGIN_DIR}/<volume> (FlexVolume)`,
  );
}
