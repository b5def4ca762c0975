import { constants } from 'node:fs';
import { lstat, open, readdir, rmdir, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { failedPrecondition } from '../errors/podvault-error.js';
import { MAX_PATH_LENGTH } from './paths.js';

/** open(2) flags of a directory that must not be reached through a symlink in its last component. */
export const DIRECTORY_NOFOLLOW = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;

/**
 * A directory held open by fd. Paths built with `child()` go through `/proc/self/fd/<fd>`, which
 * the kernel resolves to this very directory: a component above it that someone renames or swaps
 * for a symlink afterwards changes nothing. With a `device`, the directory is proven to lie on
 * that filesystem (podvault's tmpfs), so nothing done below it can reach another one.
 */
export class DirHandle {
  private constructor(
    private readonly handle: FileHandle,
    readonly device: bigint,
  ) {}

  /**
   * Open `path` as a directory without following a symlink in its last component (ELOOP or
   * ENOTDIR otherwise, which callers turn into an error naming the entry).
   */
  static async open(path: string, device?: bigint): Promise<DirHandle> {
    const handle = await open(path, DIRECTORY_NOFOLLOW);
    try {
      const st = await handle.stat({ bigint: true });
      if (device !== undefined && st.dev !== device) throw new DeviceMismatch(path);
      return new DirHandle(handle, st.dev);
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  /** `/proc/self/fd/<fd>`: this directory, however its path changes. */
  get path(): string {
    return `/proc/self/fd/${this.handle.fd}`;
  }

  /** A name directly in this directory (one segment, no `/`). */
  child(name: string): string {
    return `${this.path}/${name}`;
  }

  async chmod(mode: number): Promise<void> {
    await this.handle.chmod(mode);
  }

  /** fchown(2) to `gid`, owner unchanged: through the fd, so no path can be swapped in between. */
  async chgrp(gid: number): Promise<void> {
    await this.handle.chown(-1, gid);
  }

  /** The directory's group, read through the fd. */
  async gid(): Promise<number> {
    return (await this.handle.stat()).gid;
  }

  close(): Promise<void> {
    return this.handle.close();
  }
}

/** A directory that turned out to lie on another filesystem than the one expected. */
export class DeviceMismatch extends Error {
  readonly code = 'EXDEV';
  constructor(path: string) {
    super(`${path} is not on the expected filesystem`);
    this.name = 'DeviceMismatch';
  }
}

/**
 * Remove `name` from `parent` and, when it is a directory, everything below it: unlink(2) and
 * rmdir(2) never follow a symlink, and each directory is entered by fd with O_NOFOLLOW on the
 * parent's filesystem, so a link planted anywhere in the tree is removed, never followed, and the
 * walk cannot leave that filesystem. `label` names the entry in errors. ENOENT counts as done.
 */
export async function removeEntry(parent: DirHandle, name: string, label: string, depth = 0): Promise<void> {
  const path = parent.child(name);
  let isDirectory: boolean;
  try {
    isDirectory = (await lstat(path)).isDirectory();
  } catch (err) {
    if (codeOf(err) === 'ENOENT') return;
    throw err;
  }
  if (!isDirectory) {
    await unlink(path).catch(ignore('ENOENT'));
    return;
  }
  // Payload paths have at most MAX_PATH_LENGTH / 2 segments; anything deeper is not ours.
  if (depth > MAX_PATH_LENGTH / 2) throw failedPrecondition(`${label} is nested deeper than any payload podvault writes; left in place`);
  let dir: DirHandle;
  try {
    dir = await DirHandle.open(path, parent.device);
  } catch (err) {
    if (codeOf(err) === 'ENOENT') return;
    throw failedPrecondition(`${label} changed while podvault removed it (${codeOf(err) ?? 'error'}); left in place`, err);
  }
  try {
    for (const entry of await readdir(dir.path)) await removeEntry(dir, entry, `${label}/${entry}`, depth + 1);
  } finally {
    await dir.close();
  }
  await rmdir(path).catch(ignore('ENOENT'));
}

export function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** A `.catch()` handler that swallows the given errno codes and rethrows the rest. */
export function ignore(...codes: string[]): (err: unknown) => void {
  return (err: unknown) => {
    if (!codes.includes(codeOf(err) ?? '')) throw err;
  };
}
