import { lstatSync, statfsSync } from 'node:fs';
import { dirname } from 'node:path';
import { internal } from '../errors/podvault-error.js';
import { codeOf } from './dir-handle.js';
import { deviceName, readMountInfoSelected } from './mountinfo.js';
import type { MountEntry } from './mountinfo.js';

/** The device name podvault's tmpfs mounts carry in /proc/self/mountinfo. */
export const TMPFS_SOURCE = 'podvault';
/** statfs(2) f_type of tmpfs. */
export const TMPFS_MAGIC = 0x01021994;

/** What sits at a target path. */
export type TargetState =
  | { kind: 'absent' }
  /** A directory with nothing mounted on it. */
  | { kind: 'directory' }
  /** The root of podvault's own tmpfs, mounted exactly at the target (the newest of any stack). */
  | { kind: 'podvault'; device: bigint; readOnly: boolean }
  /** Anything else: another filesystem, a bind mount, a symlink, a file. Never touched. */
  | { kind: 'other'; what: string };

/** A line missing from a read of a mount table that is changing is read again, this often. */
const MOUNTINFO_READS = 5;

/**
 * Is `target` a mountpoint, and of podvault's tmpfs? Decided from the target itself, not from one
 * read of /proc/self/mountinfo, which can miss lines while other volumes mount and unmount (the
 * kernel's seq_file iteration skips entries when the list changes between two chunks of a read):
 *   - lstat the target and its parent (never following a link): a different st_dev means a
 *     filesystem is mounted at the target;
 *   - statfs: it must be a tmpfs;
 *   - the mountinfo line of that `major:minor` must say tmpfs, source `podvault`, root `/`, mounted
 *     at the target. The device is known to be mounted, so a read without its line raced a change
 *     and is repeated.
 * An equal st_dev is a plain directory unless a bind mount from the same filesystem sits there,
 * which only mountinfo shows; such a miss is harmless: nothing is ever removed but with rmdir(2),
 * which refuses a mountpoint.
 *
 * lstat and statfs are synchronous: each answers from the kernel's memory in microseconds, and
 * through the thread pool each cost several times that in CPU, a probe running several times per
 * publish (issue 9). So is the mountinfo read while the table is small; a large one (tenants'
 * volumes) is read through the thread pool (`readMountInfoSelected`). Only the mountinfo lines of
 * the device or the path are parsed.
 */
export async function probeTarget(target: string): Promise<TargetState> {
  let st;
  try {
    st = lstatSync(target, { bigint: true });
  } catch (err) {
    if (codeOf(err) === 'ENOENT') return { kind: 'absent' };
    throw err;
  }
  if (st.isSymbolicLink()) return { kind: 'other', what: 'a symbolic link' };
  if (!st.isDirectory()) return { kind: 'other', what: 'not a directory' };
  const parent = lstatSync(dirname(target), { bigint: true });
  if (parent.dev === st.dev) {
    const bind = (await readMountInfoSelected({ mountPoint: target }))[0];
    return bind ? { kind: 'other', what: describe(bind) } : { kind: 'directory' };
  }
  const fs = statfsSync(target, { bigint: true });
  const device = deviceName(st.dev);
  const entry = await mountAt(target, device);
  if (fs.type !== BigInt(TMPFS_MAGIC)) return { kind: 'other', what: entry ? describe(entry) : `a filesystem of type 0x${fs.type.toString(16)}` };
  if (!entry) return { kind: 'other', what: `device ${device}, mounted elsewhere and bound here` };
  if (entry.fsType !== 'tmpfs' || entry.source !== TMPFS_SOURCE || entry.root !== '/') return { kind: 'other', what: describe(entry) };
  return { kind: 'podvault', device: st.dev, readOnly: entry.superOptions.includes('ro') };
}

/** The mountinfo line of `device` mounted at `target`, reading again when the device is missing. */
async function mountAt(target: string, device: string): Promise<MountEntry | undefined> {
  for (let read = 0; read < MOUNTINFO_READS; read++) {
    const entries = await readMountInfoSelected({ device });
    if (entries.length > 0) return entries.reverse().find((m) => m.mountPoint === target);
  }
  throw internal(`the mount table does not list device ${device} mounted at ${target} after ${MOUNTINFO_READS} reads`);
}

function describe(entry: MountEntry): string {
  const bind = entry.root === '/' ? '' : ` (a bind mount of ${entry.root})`;
  return `a ${entry.fsType} filesystem from ${JSON.stringify(entry.source)}${bind}`;
}
