import { closeSync, fstatSync, mkdirSync, openSync, readlinkSync } from 'node:fs';
import { mkdir, open } from 'node:fs/promises';
import { failedPrecondition } from '../errors/podvault-error.js';
import { basename, dirname } from 'node:path';
import { codeOf, DIRECTORY_NOFOLLOW, ignore } from './dir-handle.js';
import { probeTarget } from './mount-probe.js';
import type { TargetState } from './mount-probe.js';
import { loadMountSyscalls } from './mount-syscalls.js';
import { syscallMountCalls, utilityMountCalls } from './mounter-calls.js';
import type { MountCalls } from './mounter-calls.js';
import { removeVolumeFiles } from './volume-layout.js';

export { TMPFS_SOURCE } from './mount-probe.js';

/**
 * How a target directory becomes a private in-memory filesystem. The driver uses `TmpfsMounter`;
 * only `podvault demo` run without root uses `ShmDirectoryMounter`.
 */
export interface Mounter {
  /** One line for logs and the demo: what kind of storage the files land on. */
  readonly description: string;
  /** What is at the target: nothing, a plain directory, podvault's own volume, or something else. */
  probe(target: string): Promise<TargetState>;
  /**
   * Create the target directory (its parent exists: the kubelet made it) and mount it; returns
   * what is at the target afterwards (podvault's volume, unless something went wrong).
   */
  mount(target: string, sizeBytes: number): Promise<TargetState>;
  /**
   * Make podvault's volume at the target (`device`) writable or read-only. Read-only applies to
   * the filesystem, so also to every bind mount of it, a writable one included.
   */
  setWritable(target: string, device: bigint, writable: boolean, sizeBytes: number): Promise<void>;
  /** Unmount podvault's volume at the target (the caller probed it as such). */
  unmount(target: string): Promise<void>;
  /** After the last unmount: remove what the mounter itself left in the directory, not the directory. */
  clear(target: string): Promise<void>;
}

export interface TmpfsMounterOptions {
  /** Mount with mount(8)/umount(8) even when podvault's mount(2) addon loads (`--mount-utility`). */
  mountUtility?: boolean;
}

/**
 * Every volume is a tmpfs of its own: source `podvault`, nosuid,nodev,noexec (no set-uid binaries,
 * no device files, nothing executable), `size=` and mode 0755. The mounts are made with
 * podvault's mount(2) addon when it loads, else with mount(8)/umount(8) (see `mounter-calls.ts`).
 */
export class TmpfsMounter implements Mounter {
  readonly description: string;
  private readonly calls: MountCalls;
  /** Why mount(8) is used, when it is: the flag, or why the addon did not load. */
  readonly fallbackReason: string | undefined;

  constructor(options: TmpfsMounterOptions = {}) {
    const load = options.mountUtility ? { syscalls: undefined, reason: '--mount-utility' } : loadMountSyscalls();
    this.calls = load.syscalls ? syscallMountCalls(load.syscalls) : utilityMountCalls;
    this.fallbackReason = load.syscalls ? undefined : load.reason;
    this.description = `tmpfs mount per volume, with ${this.calls.via}`;
  }

  /** `mount(2)` (podvault's addon, in-process) or `mount(8)` (a process per call). */
  get via(): MountCalls['via'] {
    return this.calls.via;
  }

  probe(target: string): Promise<TargetState> {
    return probeTarget(target);
  }

  /**
   * The parent (the kubelet made it) is opened with O_NOFOLLOW and checked to be the target's
   * parent through its fd (`readlink /proc/self/fd/<fd>`); the target is created in it,
   * non-recursively, opened with O_NOFOLLOW and checked the same way, and the tmpfs is mounted
   * onto that fd (mount(2) on `/proc/self/fd/<fd>`; mount(8) gets it as its fd 3), not onto a
   * path: a component swapped for a symlink between the checks and the mount cannot send the
   * mount elsewhere. Then the target must show podvault's tmpfs.
   */
  async mount(target: string, sizeBytes: number): Promise<TargetState> {
    if (typeof process.getuid === 'function' && process.getuid() !== 0) {
      throw failedPrecondition(`cannot mount a tmpfs at ${target}: the driver is not running as root; run it in a privileged container`);
    }
    const refuse = (why: string, err?: unknown): Error => failedPrecondition(`cannot mount a tmpfs at target_path ${target}: ${why}; nothing was mounted`, err);
    // Synchronous fs calls on raw fds: each answers from the kernel's memory, and through the
    // thread pool they cost the driver several times the CPU (issue 9).
    // The parent by fd first, so not even the directory is created anywhere but in the kubelet's.
    const parent = openDirectory(dirname(target), (err) => refuse(`its parent is not a directory (${codeOf(err) ?? 'error'})`, err));
    let dir: number;
    try {
      if (readlinkSync(fdPath(parent)) !== dirname(target)) throw refuse('its parent leads to another directory (a component was replaced by a symbolic link)');
      const child = `${fdPath(parent)}/${basename(target)}`;
      try {
        mkdirSync(child, { mode: 0o750 });
      } catch (err) {
        ignore('EEXIST')(err);
      }
      dir = openDirectory(child, (err) => refuse(`it is not a directory (${codeOf(err) ?? 'error'})`, err));
    } finally {
      closeSync(parent);
    }
    try {
      if (readlinkSync(fdPath(dir)) !== target) throw refuse('the path leads to another directory (a component was replaced by a symbolic link)');
      await this.calls.mountTmpfs(dir, sizeBytes, `cannot mount a tmpfs at ${target}`);
    } finally {
      closeSync(dir);
    }
    return probeTarget(target);
  }

  /** A remount of the filesystem through an fd on the tmpfs root, checked to be that device. */
  async setWritable(target: string, device: bigint, writable: boolean, sizeBytes: number): Promise<void> {
    const root = openDirectory(target, (err) => err);
    try {
      if (fstatSync(root, { bigint: true }).dev !== device) throw failedPrecondition(`target_path ${target} is no longer podvault's tmpfs; not remounted`);
      await this.calls.remount(root, writable, sizeBytes, `cannot remount ${target} ${writable ? 'read-write' : 'read-only'}`);
    } finally {
      closeSync(root);
    }
  }

  /**
   * By the name in its parent: an fd held on the tmpfs itself would keep it busy. The parent is
   * opened O_NOFOLLOW and checked through its fd, as for a mount, so an ancestor swapped for a
   * symlink cannot point the unmount at another volume; the last component is not followed.
   */
  async unmount(target: string): Promise<void> {
    const what = `cannot unmount ${target}`;
    const parent = openDirectory(dirname(target), (err) => failedPrecondition(`${what}: its parent is not a directory (${codeOf(err) ?? 'error'}); not unmounted`, err));
    try {
      if (readlinkSync(fdPath(parent)) !== dirname(target)) throw failedPrecondition(`${what}: its parent leads to another directory (a component was replaced by a symbolic link); not unmounted`);
      await this.calls.unmount(parent, basename(target), what);
    } finally {
      closeSync(parent);
    }
  }

  async clear(): Promise<void> {
    // The unmount took the files away; the directory below was created empty.
  }
}

/**
 * Demo-only stand-in when the process cannot mount: the "mount" is a plain directory, and the demo
 * places its kubelet directory under /dev/shm, itself a tmpfs, so secrets still stay in memory.
 */
export class ShmDirectoryMounter implements Mounter {
  readonly description = 'directory under /dev/shm (demo fallback: not running as root, no mount)';
  private readonly mounted = new Map<string, bigint>();

  async probe(target: string): Promise<TargetState> {
    const state = await probeTarget(target);
    const device = this.mounted.get(target);
    return state.kind === 'directory' && device !== undefined ? { kind: 'podvault', device, readOnly: false } : state;
  }

  async mount(target: string): Promise<TargetState> {
    await mkdir(target, { mode: 0o755 }).catch(ignore('EEXIST'));
    const dir = await open(target, DIRECTORY_NOFOLLOW);
    try {
      this.mounted.set(target, (await dir.stat({ bigint: true })).dev);
    } finally {
      await dir.close();
    }
    return this.probe(target);
  }

  async setWritable(): Promise<void> {
    // A plain directory has no read-only switch; the demo's pod is this machine's user.
  }

  async unmount(target: string): Promise<void> {
    this.mounted.delete(target);
  }

  /** Only the writer's own layout (verified), so nothing else in the directory is touched. */
  clear(target: string): Promise<void> {
    return removeVolumeFiles(target);
  }
}

/** `/proc/self/fd/<fd>`: the directory the fd holds, however its path changes. */
const fdPath = (fd: number): string => `/proc/self/fd/${fd}`;

/** open(2) a directory with O_NOFOLLOW; a failure becomes `refuse(err)`. */
function openDirectory(path: string, refuse: (err: unknown) => unknown): number {
  try {
    return openSync(path, DIRECTORY_NOFOLLOW);
  } catch (err) {
    throw refuse(err);
  }
}
