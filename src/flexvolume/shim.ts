import { createHash } from 'node:crypto';
import { CsiClient } from '../driver/client.js';
import { FLEXVOLUME_PARAMETERS_KEY, FlexOptionsError, parseFlexOptions } from './options.js';

/** Where the shipped DaemonSet serves CSI; PODVAULT_CSI_ENDPOINT overrides it. */
export const DEFAULT_FLEX_ENDPOINT = 'unix:///var/lib/kubelet/plugins/csi.podvault.dev/csi.sock';

export interface FlexResult {
  status: 'Success' | 'Failure' | 'Not supported';
  message?: string;
  capabilities?: { attach: boolean };
}

/** FlexVolume volumes have no volume id: one derived from the mount directory names them. */
export function flexVolumeId(dir: string): string {
  return `flex-${createHash('sha256').update(dir).digest('hex')}`;
}

/**
 * The kubelet's FlexVolume exec protocol, forwarded to the running driver over its CSI socket so
 * both paths share one engine. Returns the one JSON object the kubelet reads.
 */
export async function runFlexVolume(args: readonly string[], endpoint: string): Promise<FlexResult> {
  const [operation, dir, json] = args;
  switch (operation) {
    case 'init':
      return { status: 'Success', capabilities: { attach: false } };
    case 'mount': {
      if (!dir || !json) return { status: 'Failure', message: 'usage: mount <mount dir> <json options>' };
      let options: Record<string, unknown>;
      try {
        options = JSON.parse(json) as Record<string, unknown>;
      } catch {
        return { status: 'Failure', message: 'the options argument is not JSON' };
      }
      let mount;
      try {
        mount = parseFlexOptions(options);
      } catch (err) {
        if (err instanceof FlexOptionsError) return { status: 'Failure', message: err.message };
        throw err;
      }
      return call(endpoint, (client) =>
        client.publish({
          volumeId: flexVolumeId(dir),
          targetPath: dir,
          volumeCapability: { mount: { fsType: '' }, accessMode: { mode: 'SINGLE_NODE_WRITER' } },
          readonly: true,
          secrets: mount.secrets,
          // No pod keys: the driver takes the pod from the API by the uid in `dir`.
          volumeContext: { [FLEXVOLUME_PARAMETERS_KEY]: JSON.stringify(mount.parameters) },
        }),
      );
    }
    case 'unmount':
      if (!dir) return { status: 'Failure', message: 'usage: unmount <mount dir>' };
      return call(endpoint, (client) => client.unpublish({ volumeId: flexVolumeId(dir), targetPath: dir }));
    default:
      return { status: 'Not supported', message: `operation ${operation ?? '(none)'} is not supported` };
  }
}

async function call(endpoint: string, work: (client: CsiClient) => Promise<void>): Promise<FlexResult> {
  const client = new CsiClient(endpoint);
  try {
    await work(client);
    return { status: 'Success' };
  } catch (err) {
    const e = err as { details?: unknown; message?: unknown };
    const message = typeof e.details === 'string' && e.details !== '' ? e.details : typeof e.message === 'string' ? e.message : 'failed';
    return { status: 'Failure', message: `podvault: ${message}` };
  } finally {
    client.close();
  }
}
