import { rm } from 'node:fs/promises';
import { internal } from '../errors/podvault-error.js';
import { writeAtomically } from './atomic-writer.js';
import type { PayloadFile } from './atomic-writer.js';
import type { Mounter } from './mounter.js';

export interface MountEngineOptions {
  mounter: Mounter;
  /** Size cap of each volume's tmpfs, in bytes. */
  tmpfsSizeBytes: number;
}

export interface PublishOutcome {
  /** A new tmpfs was mounted by this call. */
  mounted: boolean;
  /** The visible file set changed. */
  changed: boolean;
}

/**
 * The only code that touches the node's filesystem on behalf of a volume. Callers pass a target
 * path already checked by `checkTargetPath` and a payload already fetched in full: a failed fetch
 * never reaches here, so it can leave nothing behind.
 */
export class MountEngine {
  constructor(private readonly options: MountEngineOptions) {}

  get description(): string {
    return this.options.mounter.description;
  }

  isMounted(target: string): Promise<boolean> {
    return this.options.mounter.isMounted(target);
  }

  /**
   * Mount (first time) and write the files; on a first-time failure, undo the mount. Callers that
   * just read the mount table under the volume's lock pass what they saw, so it is read once.
   */
  async publish(target: string, payload: readonly PayloadFile[], alreadyMounted?: boolean): Promise<PublishOutcome> {
    const { mounter, tmpfsSizeBytes } = this.options;
    const mounted = !(alreadyMounted ?? (await mounter.isMounted(target)));
    if (mounted) await mounter.mount(target, tmpfsSizeBytes);
    try {
      const changed = await writeAtomically(target, payload);
      return { mounted, changed };
    } catch (err) {
      if (mounted) await this.unpublish(target);
      if (isNoSpace(err)) {
        throw internal(`the files do not fit in the volume's ${tmpfsSizeBytes}-byte tmpfs; raise --tmpfs-size`, err);
      }
      throw err;
    }
  }

  /** Unmount and remove the target. Succeeds when it is already gone. */
  async unpublish(target: string): Promise<void> {
    await this.options.mounter.unmount(target);
    if (await this.options.mounter.isMounted(target)) throw internal(`${target} is still mounted after unmount`);
    await rm(target, { recursive: true, force: true });
  }
}

function isNoSpace(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === 'ENOSPC';
}
