import { spawn } from 'node:child_process';
import { lstatSync } from 'node:fs';
import { failedPrecondition } from '../errors/podvault-error.js';
import { TMPFS_SOURCE } from './mount-probe.js';
import type { MountSyscalls } from './mount-syscalls.js';

/**
 * The three mount operations `TmpfsMounter` performs, on a directory it has opened and verified
 * (`fd`) or on a path it has just probed. Two ways to do them, with the same flags and options:
 * podvault's mount(2) addon in-process (`syscallMountCalls`), or mount(8)/umount(8) processes
 * (`utilityMountCalls`: the fallback when the addon is not built, and `--mount-utility`).
 */
export interface MountCalls {
  /** What does the mounting, for the start-up log line: `mount(2)` or `mount(8)`. */
  readonly via: 'mount(2)' | 'mount(8)';
  /** A new tmpfs (source `podvault`, nosuid,nodev,noexec, `size=`, mode 0755) onto the directory `fd`. */
  mountTmpfs(fd: number, sizeBytes: number, what: string): Promise<void>;
  /**
   * Remount the tmpfs whose root is `fd` read-only or writable: a remount of the filesystem (its
   * superblock), not of one mount (no MS_BIND), so read-only holds for every bind mount of it, a
   * pod's writable view included. nosuid,nodev,noexec are repeated (a remount without them clears
   * them); `size=` when writable lets a volume mounted by an older driver grow.
   */
  remount(fd: number, writable: boolean, sizeBytes: number, what: string): Promise<void>;
  /**
   * Unmount what is mounted at `name` in the directory `parent` (an fd the mounter opened and
   * verified, so no ancestor can be swapped), without following a symlink at `name`.
   */
  unmount(parent: number, name: string, what: string): Promise<void>;
}

/** The magic link of one of this process's fds: mount(2) on it acts on the directory the fd holds. */
const fdPath = (fd: number): string => `/proc/self/fd/${fd}`;

const tmpfsData = (sizeBytes: number): string => `size=${sizeBytes},mode=0755`;

/** One syscall each, in the driver's process (util-linux's mount(8) makes these same calls). */
export function syscallMountCalls(sys: MountSyscalls): MountCalls {
  const { MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_RDONLY, MS_REMOUNT, UMOUNT_NOFOLLOW } = sys.flags;
  const hardening = MS_NOSUID | MS_NODEV | MS_NOEXEC;
  const run = (what: string, call: () => void): Promise<void> => {
    try {
      call();
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(failedPrecondition(`${what}: ${(err as Error).message}`, err));
    }
  };
  return {
    via: 'mount(2)',
    mountTmpfs: (fd, sizeBytes, what) => run(what, () => sys.mount(TMPFS_SOURCE, fdPath(fd), 'tmpfs', hardening, tmpfsData(sizeBytes))),
    remount: (fd, writable, sizeBytes, what) => run(what, () => sys.mount(TMPFS_SOURCE, fdPath(fd), null, MS_REMOUNT | hardening | (writable ? 0 : MS_RDONLY), writable ? `size=${sizeBytes}` : null)),
    unmount: (parent, name, what) => run(what, () => sys.umount2(`${fdPath(parent)}/${name}`, UMOUNT_NOFOLLOW)),
  };
}

/** The fd handed to mount(8) as its fd 3, and the path that names it there. */
const FD3 = fdPath(3);

const TMPFS_FLAGS = 'nosuid,nodev,noexec';

/**
 * mount(8) and umount(8), `--no-canonicalize` so they use the paths as given: the fd becomes the
 * utility's fd 3 and it mounts onto `/proc/self/fd/3`. Each call forks a process (~1.5 ms of the
 * driver's CPU, issue 9).
 */
export const utilityMountCalls: MountCalls = {
  via: 'mount(8)',
  mountTmpfs: (fd, sizeBytes, what) => runWithFd('mount', ['--no-canonicalize', '-t', 'tmpfs', '-o', `${tmpfsData(sizeBytes)},${TMPFS_FLAGS}`, TMPFS_SOURCE, FD3], fd, what),
  remount: (fd, writable, sizeBytes, what) => runWithFd('mount', ['--no-canonicalize', '-o', `remount,${writable ? 'rw' : 'ro'},${TMPFS_FLAGS}${writable ? `,size=${sizeBytes}` : ''}`, FD3], fd, what),
  unmount: (parent, name, what) => unmountWithUtility(parent, name, what),
};

/**
 * umount(8) run as root follows a symlink in the last component (libmount passes
 * UMOUNT_NOFOLLOW only for non-root users): the name is lstat'ed through the parent's fd first
 * and must be a directory. What is left is the instant between that lstat and umount(8)'s own
 * lookup, in the kubelet's directory (which no pod can write); the addon's umount2 has no such
 * instant.
 */
function unmountWithUtility(parent: number, name: string, what: string): Promise<void> {
  if (!lstatSync(`${fdPath(parent)}/${name}`, { throwIfNoEntry: false })?.isDirectory()) {
    return Promise.reject(failedPrecondition(`${what}: it is a symbolic link, not a directory or gone; not unmounted`));
  }
  return runWithFd('umount', ['--no-canonicalize', `${FD3}/${name}`], parent, what);
}

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
