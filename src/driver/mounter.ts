import { spawn } from 'node:child_process';
import { mkdir, open, readlink } from 'node:fs/promises';
import { failedPrecondition } from '../errors/podvault-error.js';
import { basename, dirname } from 'node:path';
import { codeOf, DIRECTORY_NOFOLLOW, DirHandle, ignore } from './dir-handle.js';
import { probeTarget, TMPFS_SOURCE } from './mount-probe.js';
import type { TargetState } from './mount-probe.js';
import { removeVolumeFiles } from './volume-layout.js';

export { TMPFS_SOURCE } from './mount-probe.js';

/** Mount options of every volume: no set-uid binaries, no device files, nothing executable. */
export const TMPFS_FLAGS = ['nosuid', 'nodev', 'noexec'] as const;

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

export class TmpfsMounter implements Mounter {
  readonly description = 'tmpfs mount per volume';

  probe(target: string): Promise<TargetState> {
    return probeTarget(target);
  }

  /**
   * The parent (the kubelet made it) is opened with O_NOFOLLOW and checked to be the target's
   * parent through its fd (`readlink /proc/self/fd/<fd>`); the target is created in it,
   * non-recursively, opened with O_NOFOLLOW and checked the same way, and the tmpfs is mounted
   * onto that fd (mount(8)'s fd 3, `/proc/self/fd/3` with --no-canonicalize), not onto a path:
   * a component swapped for a symlink between the checks and mount(8) cannot send the mount
   * elsewhere. Then the target must show podvault's tmpfs.
   */
  async mount(target: string, sizeBytes: number): Promise<TargetState> {
    if (typeof process.getuid === 'function' && process.getuid() !== 0) {
      throw failedPrecondition(`cannot mount a tmpfs at ${target}: the driver is not running as root; run it in a privileged container`);
    }
    const refuse = (why: string, err?: unknown): Error => failedPrecondition(`cannot mount a tmpfs at target_path ${target}: ${why}; nothing was mounted`, err);
    // The parent by fd first, so not even the directory is created anywhere but in the kubelet's.
    const parent = await DirHandle.open(dirname(target)).catch((err: unknown) => {
      throw refuse(`its parent is not a directory (${codeOf(err) ?? 'error'})`, err);
    });
    let dir;
    try {
      if ((await readlink(parent.path)) !== dirname(target)) throw refuse('its parent leads to another directory (a component was replaced by a symbolic link)');
      await mkdir(parent.child(basename(target)), { mode: 0o750 }).catch(ignore('EEXIST'));
      dir = await open(parent.child(basename(target)), DIRECTORY_NOFOLLOW).catch((err: unknown) => {
        throw refuse(`it is not a directory (${codeOf(err) ?? 'error'})`, err);
      });
    } finally {
      await parent.close();
    }
    try {
      if ((await readlink(`/proc/self/fd/${dir.fd}`)) !== target) throw refuse('the path leads to another directory (a component was replaced by a symbolic link)');
      const options = [`size=${sizeBytes}`, 'mode=0755', ...TMPFS_FLAGS].join(',');
      await runWithFd('mount', ['--no-canonicalize', '-t', 'tmpfs', '-o', options, TMPFS_SOURCE, FD3], dir.fd, `cannot mount a tmpfs at ${target}`);
    } finally {
      await dir.close();
    }
    return probeTarget(target);
  }

  /** `mount -o remount` through an fd on the tmpfs root, checked to be that device. */
  async setWritable(target: string, device: bigint, writable: boolean, sizeBytes: number): Promise<void> {
    const root = await open(target, DIRECTORY_NOFOLLOW);
    try {
      if ((await root.stat({ bigint: true })).dev !== device) throw failedPrecondition(`target_path ${target} is no longer podvault's tmpfs; not remounted`);
      // remount without nosuid,nodev,noexec would clear them from this mount; size= lets a
      // volume mounted by an older driver grow to what a rotation needs.
      const options = ['remount', writable ? 'rw' : 'ro', ...TMPFS_FLAGS, ...(writable ? [`size=${sizeBytes}`] : [])].join(',');
      await runWithFd('mount', ['--no-canonicalize', '-o', options, FD3], root.fd, `cannot remount ${target} ${writable ? 'read-write' : 'read-only'}`);
    } finally {
      await root.close();
    }
  }

  async unmount(target: string): Promise<void> {
    // By path: an fd held on the tmpfs would keep it busy. The path was just probed, and every
    // component of it is the kubelet's (checkTargetPath), none a pod's.
    await runWithFd('umount', ['--no-canonicalize', target], undefined, `cannot unmount ${target}`);
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

/** The fd handed to mount(8) as its fd 3, and the path that names it there. */
const FD3 = '/proc/self/fd/3';

/** Run a mount utility with `fd` as its fd 3; its stderr becomes the error message. */
function runWithFd(command: string, args: string[], fd: number | undefined, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe', ...(fd === undefined ? [] : [fd])] });
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      if (stderr.length < 2000) stderr += chunk;
    });
    child.on('error', (err) => reject(failedPrecondition(`${what}: ${err.message}`, err)));
    child.on('close', (code) => {
      if (code === 0) resolve();
      else reject(failedPrecondition(`${what}: ${stderr.trim() || `${command} exited with ${String(code)}`}`));
    });
  });
}
