import { execFile } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { promisify } from 'node:util';
import { failedPrecondition, internal } from '../errors/podvault-error.js';
import { findMount } from './mountinfo.js';

const run = promisify(execFile);

/** The device name podvault's tmpfs mounts carry in /proc/self/mountinfo. */
export const TMPFS_SOURCE = 'podvault';

/** Mount options of every volume: no set-uid binaries, no device files, nothing executable. */
export const TMPFS_FLAGS = ['nosuid', 'nodev', 'noexec'] as const;

/**
 * How a target directory becomes a private in-memory filesystem. The driver uses `TmpfsMounter`;
 * only `podvault demo` run without root uses `ShmDirectoryMounter`.
 */
export interface Mounter {
  /** One line for logs and the demo: what kind of storage the files land on. */
  readonly description: string;
  isMounted(target: string): Promise<boolean>;
  /** Create the target directory (its parent exists: the kubelet made it) and mount it. */
  mount(target: string, sizeBytes: number): Promise<void>;
  unmount(target: string): Promise<void>;
}

export class TmpfsMounter implements Mounter {
  readonly description = 'tmpfs mount per volume';

  async isMounted(target: string): Promise<boolean> {
    return (await findMount(target)) !== undefined;
  }

  async mount(target: string, sizeBytes: number): Promise<void> {
    if (typeof process.getuid === 'function' && process.getuid() !== 0) {
      throw failedPrecondition(
        `cannot mount a tmpfs at ${target}: the driver is not running as root; run it in a privileged container`,
      );
    }
    await mkdir(target, { recursive: true, mode: 0o750 });
    const options = [`size=${sizeBytes}`, 'mode=0755', ...TMPFS_FLAGS].join(',');
    try {
      await run('mount', ['-t', 'tmpfs', '-o', options, TMPFS_SOURCE, target]);
    } catch (err) {
      throw failedPrecondition(`cannot mount a tmpfs at ${target}: ${stderrOf(err)}`, err);
    }
  }

  async unmount(target: string): Promise<void> {
    // Mounts may be stacked (a crash between mount and bookkeeping, a retried publish): peel all.
    for (let i = 0; i < 8 && (await this.isMounted(target)); i++) {
      try {
        await run('umount', [target]);
      } catch (err) {
        throw internal(`cannot unmount ${target}: ${stderrOf(err)}`, err);
      }
    }
  }
}

/**
 * Demo-only stand-in when the process cannot mount: the "mount" is a plain directory, and the demo
 * places its kubelet directory under /dev/shm, itself a tmpfs, so secrets still stay in memory.
 */
export class ShmDirectoryMounter implements Mounter {
  readonly description = 'directory under /dev/shm (demo fallback: not running as root, no mount)';
  private readonly mounted = new Set<string>();

  async isMounted(target: string): Promise<boolean> {
    return this.mounted.has(target);
  }

  async mount(target: string): Promise<void> {
    await mkdir(target, { recursive: true, mode: 0o755 });
    this.mounted.add(target);
  }

  async unmount(target: string): Promise<void> {
    this.mounted.delete(target);
  }
}

function stderrOf(err: unknown): string {
  const stderr = (err as { stderr?: unknown }).stderr;
  if (typeof stderr === 'string' && stderr.trim() !== '') return stderr.trim();
  return err instanceof Error ? err.message : 'unknown error';
}
