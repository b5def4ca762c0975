import { createRequire } from 'node:module';
import { constants as osConstants } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../package-info.js';

/**
 * mount(2) and umount2(2) in the driver's own process, through podvault's addon (native/mount.c,
 * built by `npm run build:native` from `prepare`). Each call is one syscall: no mount(8) process
 * per publish (issue 9: forking one cost more CPU than the rest of a publish). Synchronous: a
 * tmpfs mount, remount or unmount does no I/O.
 */
export interface MountSyscalls {
  /** mount(2). `fstype` and `data` may be null (a remount). Throws an `ErrnoError`. */
  mount(source: string, target: string, fstype: string | null, flags: number, data: string | null): void;
  /** umount2(2). Throws an `ErrnoError`. */
  umount2(target: string, flags: number): void;
  /** The flag values of this machine's <sys/mount.h>. */
  readonly flags: MountFlags;
}

export interface MountFlags {
  readonly MS_RDONLY: number;
  readonly MS_NOSUID: number;
  readonly MS_NODEV: number;
  readonly MS_NOEXEC: number;
  readonly MS_REMOUNT: number;
  readonly MS_BIND: number;
  readonly UMOUNT_NOFOLLOW: number;
}

/** A failed syscall: `code` is the errno name (EPERM, EBUSY, ...), as Node's own fs errors carry. */
export class ErrnoError extends Error {
  constructor(
    readonly syscall: string,
    readonly errno: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ErrnoError';
  }
}

/** The addon, or why it is not there (the driver then mounts with mount(8), and says so once). */
export type MountSyscallsLoad = { syscalls: MountSyscalls } | { syscalls: undefined; reason: string };

/** Where `node-gyp rebuild` in native/ leaves the addon. */
export const ADDON_PATH = join(packageRoot, 'native', 'build', 'Release', 'podvault_mount.node');

const FLAG_NAMES = ['MS_RDONLY', 'MS_NOSUID', 'MS_NODEV', 'MS_NOEXEC', 'MS_REMOUNT', 'MS_BIND', 'UMOUNT_NOFOLLOW'] as const;

const errnoNames = new Map<number, string>(Object.entries(osConstants.errno).map(([name, value]) => [value, name]));

let loaded: MountSyscallsLoad | undefined;

/** Load the addon once per process; later calls return the same answer. */
export function loadMountSyscalls(): MountSyscallsLoad {
  loaded ??= loadMountSyscallsFrom(ADDON_PATH);
  return loaded;
}

/** Load the addon at `path`: the syscalls, or why not (not built, does not load, not ours). */
export function loadMountSyscallsFrom(path: string): MountSyscallsLoad {
  let addon: unknown;
  try {
    addon = createRequire(import.meta.url)(path);
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    return { syscalls: undefined, reason: code === 'MODULE_NOT_FOUND' ? `${path} is not built (npm run build:native)` : `${path} does not load: ${(err as Error).message}` };
  }
  const shape = addon as { mount?: unknown; umount2?: unknown; constants?: Record<string, unknown> } | null;
  const flags = shape?.constants;
  if (typeof shape?.mount !== 'function' || typeof shape.umount2 !== 'function' || !flags || !FLAG_NAMES.every((n) => typeof flags[n] === 'number')) {
    return { syscalls: undefined, reason: `${path} is not podvault's mount addon` };
  }
  const mount = shape.mount as (...args: unknown[]) => void;
  const umount2 = shape.umount2 as (...args: unknown[]) => void;
  return {
    syscalls: {
      flags: Object.freeze(Object.fromEntries(FLAG_NAMES.map((n) => [n, flags[n] as number])) as unknown as MountFlags),
      mount: (source, target, fstype, flagBits, data) => withErrnoCode(() => mount(source, target, fstype, flagBits, data)),
      umount2: (target, flagBits) => withErrnoCode(() => umount2(target, flagBits)),
    },
  };
}

/** The addon's errors carry `errno` and `syscall`; give them the errno name as `code`. */
function withErrnoCode(call: () => void): void {
  try {
    call();
  } catch (err) {
    const { errno, syscall } = err as { errno?: unknown; syscall?: unknown };
    if (typeof errno !== 'number' || typeof syscall !== 'string') throw err;
    const code = errnoNames.get(errno) ?? `errno ${errno}`;
    throw new ErrnoError(syscall, errno, code, `${(err as Error).message} (${code})`);
  }
}
