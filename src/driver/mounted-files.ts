import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { DirHandle } from './dir-handle.js';
import { payloadPathProblem } from './paths.js';
import { readLayout } from './volume-layout.js';

/** Reading a file back: never through a symlink, never blocking on a FIFO. */
const READ_FILE = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/**
 * The bytes of files podvault wrote into a volume, for a rotation that keeps the objects whose
 * version did not move (the version watch, docs/rotation.md) instead of fetching them again.
 *
 * The tmpfs is read-only except while the driver itself writes it, under the volume's lock, so its
 * files are the driver's own; each read is still checked as the writer checks what it compares:
 * the root opened without following a link and on the volume's device, the layout verified
 * (`readLayout`: `..data` names one of the writer's directories), each path one the writer would
 * accept, each of its directories entered by fd with O_DIRECTORY|O_NOFOLLOW on the volume's
 * device (as the writer enters them), the file opened with O_NOFOLLOW, a regular file on the
 * same device, at most `maxBytes` in all. Every component, not only the last: a directory of
 * the volume swapped for a link to another of its directories would otherwise hand back one
 * object's bytes as another's (same device), and a link to /dev would have root open a device
 * node past the tmpfs's nodev before any check. A path that fails any check is left out of the
 * answer, so the caller fetches that object from the vault instead: reading back never makes a
 * rotation fail, and never reads past the volume. (Whether the bytes are the ones the driver
 * wrote is its caller's check: WrittenFiles.)
 */
export async function readMountedFiles(target: string, device: bigint, paths: readonly string[], maxBytes: number): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  let root: DirHandle;
  try {
    root = await DirHandle.open(target, device);
  } catch {
    return out;
  }
  try {
    let dataDir: string | undefined;
    try {
      const layout = await readLayout(root, target);
      if (layout.complete) dataDir = layout.dataDir;
    } catch {
      return out; // not what the writer leaves: nothing is reused
    }
    if (!dataDir) return out;
    let data: DirHandle;
    try {
      data = await DirHandle.open(root.child(dataDir), device);
    } catch {
      return out;
    }
    try {
      let total = 0;
      for (const path of new Set(paths)) {
        if (payloadPathProblem(path)) continue;
        const bytes = await readOne(data, path, maxBytes - total);
        if (!bytes) continue;
        total += bytes.length;
        out.set(path, bytes);
      }
    } finally {
      await data.close();
    }
    return out;
  } finally {
    await root.close();
  }
}

/** One file below the data directory `data`, each directory on the way entered by fd without following a link. */
async function readOne(data: DirHandle, path: string, maxBytes: number): Promise<Buffer | undefined> {
  const segments = path.split('/');
  const name = segments.pop() as string;
  const opened: DirHandle[] = [];
  try {
    let dir = data;
    for (const segment of segments) {
      dir = await DirHandle.open(dir.child(segment), data.device);
      opened.push(dir);
    }
    return await readFile(dir.child(name), data.device, maxBytes);
  } catch {
    return undefined;
  } finally {
    for (const dir of opened) await dir.close();
  }
}

async function readFile(path: string, device: bigint, maxBytes: number): Promise<Buffer | undefined> {
  let handle;
  try {
    handle = await open(path, READ_FILE);
  } catch {
    return undefined;
  }
  try {
    const st = await handle.stat({ bigint: true });
    if (!st.isFile() || st.dev !== device || st.size > BigInt(Math.max(0, maxBytes))) return undefined;
    const bytes = await handle.readFile();
    return bytes.length === Number(st.size) ? bytes : undefined;
  } catch {
    return undefined;
  } finally {
    await handle.close();
  }
}
