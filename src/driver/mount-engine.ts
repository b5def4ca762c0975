import { rmdir, statfs } from 'node:fs/promises';
import { failedPrecondition, internal } from '../errors/podvault-error.js';
import { writeAtomically } from './atomic-writer.js';
import type { PayloadFile } from './atomic-writer.js';
import { codeOf, DirHandle } from './dir-handle.js';
import type { Mounter } from './mounter.js';
import type { TargetState } from './mount-probe.js';
import { readLayout } from './volume-layout.js';
import { readMountedFiles } from './mounted-files.js';
import { checkPayloadSize, mountSizeBytes } from './volume-size.js';
import type { NodeVolumeBudget } from './node-volume-budget.js';

export interface MountEngineOptions {
  mounter: Mounter;
  /** Limit of one volume's contents (`--tmpfs-size`), in bytes as tmpfs counts them. */
  tmpfsSizeBytes: number;
  /** The node-wide bound on all volumes' contents (`--max-node-volume-size`); none in unit tests. */
  budget?: NodeVolumeBudget;
}

export interface PublishOutcome {
  /** A new tmpfs was mounted by this call. */
  mounted: boolean;
  /** The visible file set changed. */
  changed: boolean;
}

/**
 * What a target holds, for the publish's "is this a republish" question: nothing of ours, or
 * podvault's volume with (`complete`) or without the files of a finished write.
 */
export type VolumeState = { kind: 'none' } | { kind: 'mounted'; complete: boolean };

/** Stacked podvault mounts (a crash between mount and bookkeeping) are peeled at most this often. */
const MAX_STACKED_MOUNTS = 8;

/**
 * The only code that touches the node's filesystem on behalf of a volume. Callers pass a target
 * path already checked by `checkTargetPath` and a payload already fetched in full: a failed fetch
 * never reaches here, so it can leave nothing behind. It acts only on podvault's own tmpfs at
 * exactly the target, keeps that tmpfs read-only except while it writes, and removes nothing but
 * what it created.
 */
export class MountEngine {
  constructor(private readonly options: MountEngineOptions) {}

  get description(): string {
    return this.options.mounter.description;
  }

  async isMounted(target: string): Promise<boolean> {
    return (await this.options.mounter.probe(target)).kind === 'podvault';
  }

  /** What sits at the target (see `probeTarget`): decided from the target itself, not one mount-table read. */
  probe(target: string): Promise<TargetState> {
    return this.options.mounter.probe(target);
  }

  /**
   * Whether podvault's volume is at the target and finished; anything else mounted there is
   * refused. `layout: false` (a volume the driver knows) skips reading the volume's files.
   */
  async inspect(target: string, options: { layout?: boolean } = {}): Promise<VolumeState> {
    const state = await this.options.mounter.probe(target);
    if (state.kind === 'other') throw otherAtTarget(target, state.what);
    if (state.kind !== 'podvault') return { kind: 'none' };
    if (options.layout === false) return { kind: 'mounted', complete: false };
    const root = await DirHandle.open(target, state.device);
    try {
      return { kind: 'mounted', complete: (await readLayout(root, target)).complete };
    } catch {
      return { kind: 'mounted', complete: false }; // not what the writer leaves: not finished
    } finally {
      await root.close();
    }
  }

  /**
   * The bytes of these files of the volume as podvault last wrote them (see mounted-files.ts); a
   * path that is not there, or not the writer's own regular file, is absent from the answer. Only
   * from podvault's tmpfs at exactly the target: anything else there answers nothing.
   */
  async readMounted(target: string, paths: readonly string[]): Promise<Map<string, Buffer>> {
    const state = await this.options.mounter.probe(target);
    if (state.kind !== 'podvault') return new Map();
    return readMountedFiles(target, state.device, paths, this.options.tmpfsSizeBytes);
  }

  /**
   * Mount (when podvault's tmpfs is not there yet) and write the files; the tmpfs is read-only
   * before and after. On a failure after this call mounted, the mount is undone. `expectMounted`
   * (a rotation) refuses to mount: a volume unmounted behind our back is not brought back.
   * `group` (the pod's fsGroup) makes the root and everything written that group's, group-readable.
   */
  async publish(target: string, payload: readonly PayloadFile[], expectMounted = false, group?: number): Promise<PublishOutcome> {
    // 1. The size limits, before anything is touched: the volume's, then the node's (reserved now,
    // given back if this publish fails).
    const bytes = checkPayloadSize(payload, this.options.tmpfsSizeBytes);
    const undoReservation = this.options.budget?.reserve(target, bytes) ?? (() => {});
    try {
      return await this.mountAndWrite(target, payload, expectMounted, group);
    } catch (err) {
      undoReservation();
      throw err;
    }
  }

  private async mountAndWrite(target: string, payload: readonly PayloadFile[], expectMounted: boolean, group: number | undefined): Promise<PublishOutcome> {
    const { mounter, tmpfsSizeBytes } = this.options;
    const mountSize = mountSizeBytes(tmpfsSizeBytes);
    // 2. Only podvault's own tmpfs is written to; mount it when the target has none.
    let state = await mounter.probe(target);
    if (state.kind === 'other') throw otherAtTarget(target, state.what);
    const mounted = state.kind !== 'podvault';
    if (state.kind !== 'podvault') {
      if (expectMounted) throw failedPrecondition(`target_path ${target} is no longer mounted; it is not mounted again`);
      state = await mounter.mount(target, mountSize);
      if (state.kind !== 'podvault') {
        // mount(8) succeeded onto the verified directory, yet podvault's tmpfs is not what is there.
        await this.unmountAndRemove(target).catch(() => undefined);
        throw internal(`the tmpfs mounted for ${target} is not there after mount(8) (found ${state.kind === 'other' ? state.what : state.kind})`);
      }
    }
    const device = state.device;
    // 3. Write: a fresh mount is writable already; a mounted one becomes so only if something
    // changed. One found writable (left so by a crash, or mounted by an older driver) counts as
    // writable, so step 4 makes it read-only.
    let writable = mounted || !state.readOnly;
    try {
      const changed = await writeAtomically(target, payload, {
        device,
        ...(group === undefined ? {} : { group }),
        beforeChange: async () => {
          if (mounted) return;
          writable = true;
          await mounter.setWritable(target, device, true, mountSize); // size= too: an older, smaller mount grows
        },
      });
      // 4. Read-only again, before the answer: a pod with a writable view cannot change its files.
      if (writable) await mounter.setWritable(target, device, false, mountSize);
      writable = false;
      return { mounted, changed };
    } catch (err) {
      if (mounted) await this.unmountAndRemove(target).catch(() => undefined);
      else if (writable) await mounter.setWritable(target, device, false, mountSize).catch(() => undefined);
      if (codeOf(err) === 'ENOSPC') throw internal(`volume ${target} ran out of space although its files are within --tmpfs-size; see the driver log`, err);
      throw err;
    }
  }

  /**
   * Unmount podvault's tmpfs at the target (each one of a stack) and remove the directory it was
   * mounted on, only with rmdir(2): never recursively, so nothing a pod or another plugin put
   * there is deleted. Another filesystem at the target is refused and left mounted. OK when the
   * target is already gone.
   */
  async unpublish(target: string): Promise<void> {
    await this.unmountAndRemove(target);
  }

  /** A volume found unmounted behind the driver's back: its contents no longer count. */
  forget(target: string): void {
    this.options.budget?.release(target);
  }

  /** After a restart: count a recovered volume's contents (what its tmpfs holds) in the budget. */
  async adopt(target: string): Promise<void> {
    const fs = await statfs(target);
    this.options.budget?.adopt(target, (fs.blocks - fs.bfree) * fs.bsize);
  }

  private async unmountAndRemove(target: string): Promise<void> {
    const { mounter } = this.options;
    for (let i = 0; ; i++) {
      const state = await mounter.probe(target);
      if (state.kind === 'absent') return this.options.budget?.release(target);
      if (state.kind === 'other') throw otherAtTarget(target, state.what);
      if (state.kind === 'directory') break;
      if (i === MAX_STACKED_MOUNTS) throw internal(`target_path ${target} still holds podvault's tmpfs after ${MAX_STACKED_MOUNTS} unmounts`);
      await mounter.unmount(target);
    }
    // Unmounted: its contents are gone, whatever the rmdir below says.
    this.options.budget?.release(target);
    await mounter.clear(target);
    try {
      await rmdir(target);
    } catch (err) {
      const code = codeOf(err);
      if (code === 'ENOENT') return;
      if (code === 'ENOTEMPTY' || code === 'EEXIST') throw failedPrecondition(`target_path ${target} is not empty after the unmount: podvault removes only the empty directory it made, so it left it in place`, err);
      if (code === 'EBUSY') throw failedPrecondition(`target_path ${target} is a mountpoint of something that is not podvault's tmpfs; left in place`, err);
      throw internal(`cannot remove target_path ${target} (${code ?? 'error'})`, err);
    }
  }
}

function otherAtTarget(target: string, what: string): Error {
  return failedPrecondition(`target_path ${target} holds ${what}, not podvault's tmpfs; podvault leaves it alone (nothing was mounted, unmounted or removed)`);
}
