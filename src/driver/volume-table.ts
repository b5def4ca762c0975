import type { PublishRequest } from './publish-request.js';
import type { PodStatusObject } from '../kube/pod-status.js';
import type { FollowedObject } from '../providers/provider.js';
import type { WrittenFiles } from './written-files.js';

/**
 * What the driver knows of a volume it published: enough to rotate it without the kubelet (its
 * latest request, kept in memory only, since it may hold nodePublishSecretRef values) and when it
 * last fetched. Versions are names and ids, never values.
 */
export interface MountedVolume {
  volumeId: string;
  target: string;
  request: PublishRequest;
  /** When the objects were last fetched successfully (epoch ms). */
  fetchedAt: number;
  /** When the kubelet last called NodePublishVolume for it (epoch ms). */
  republishedAt: number;
  /** `<objectId> -> version` of what is mounted. */
  versions: Record<string, string>;
  /**
   * The files that follow an object's current version (key into `versions`, and the object), from
   * the last fetch: what the version watch's changes are compared with. Not kept across a
   * restart: a recovered volume is compared again after its first rotation.
   */
  follows?: Array<{ key: string; object: FollowedObject }>;
  /**
   * What the driver last wrote into it (how each file was made, a digest of its bytes): a rotation
   * that keeps objects (the version watch) takes back only these very bytes. In memory only: a
   * recovered volume has none, and its first rotation fetches everything.
   */
  written?: WrittenFiles;
  /** When the version watch's events last rotated it (epoch ms): see WATCH_ROTATION_SPACING_MS. */
  watchRotatedAt?: number;
  /**
   * Recovered after a restart without the nodePublishSecretRef it was published with (secrets are
   * never written to disk): identity resolution without it would pick another mode (the pod's
   * binding), so the timer leaves it alone until the kubelet republishes it with its secret.
   */
  awaitingSecrets?: boolean;
  /** The SecretProviderClassPodStatus last meant for it (ids and versions), and whether writing it failed. */
  podStatus?: { objects: PodStatusObject[]; pending: boolean };
}

export class VolumeTable {
  private readonly volumes = new Map<string, MountedVolume>();

  get(volumeId: string): MountedVolume | undefined {
    return this.volumes.get(volumeId);
  }

  set(volume: MountedVolume): void {
    this.volumes.set(volume.volumeId, volume);
  }

  delete(volumeId: string): void {
    this.volumes.delete(volumeId);
  }

  all(): MountedVolume[] {
    return [...this.volumes.values()];
  }

  get size(): number {
    return this.volumes.size;
  }
}
