import { constants } from 'node:fs';
import { lstat, mkdir, mkdtemp, open, readdir, rename, symlink, unlink } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { failedPrecondition, invalidArgument } from '../errors/podvault-error.js';
import { codeOf, DeviceMismatch, DirHandle, ignore, removeEntry } from './dir-handle.js';
import { payloadPathProblem } from './paths.js';
import { DATA_DIR_LINK, DATA_DIR_TMP_LINK, readLayout, topLevel } from './volume-layout.js';


/** One file a volume should hold. */
export interface PayloadFile {
  /** Relative path inside the volume, e.g. `db-password` or `tls/cert.pem`. */
  path: string;
  /** Permission bits, e.g. 0o644. */
  mode: number;
  contents: Buffer;
}

export interface WriteOptions {
  /**
   * `st_dev` of podvault's tmpfs mounted at the target: the writer refuses a target that is not
   * the root of that filesystem. Absent only for the demo's directory stand-in and unit tests.
   */
  device?: bigint;
  /** Called once right before the first change (the engine makes the tmpfs writable there). */
  beforeChange?: () => Promise<void>;
  /**
   * The pod's fsGroup (`volume_mount_group`): the tmpfs root and every directory and file
   * written belong to it, and files gain group read (`groupReadable`). Absent: root's, as before.
   */
  group?: number;
}

/**
 * A file's mode under a mount group: group read added to its `filePermission`, owner and other
 * bits kept. As the kubelet's fsGroup handling does for read-only volumes (g+r on files, g+rx on
 * directories, which the writer's 0755 directories already have); never group write: the volume
 * is read-only. Setgid directories (the kubelet's other step) are not needed: the writer gives
 * every entry its group itself, through the entry's fd.
 */
export function groupReadable(mode: number, group: number | undefined): number {
  return group === undefined ? mode : mode | 0o040;
}

/** A new file: created here and now, never through a symlink, never over an existing name. */
const NEW_FILE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
/** Reading a file back for the comparison: no symlink, no blocking on a FIFO someone planted. */
const READ_FILE = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/**
 * Write a set of files into `targetDir` so that a reader sees either the whole old set or the
 * whole new set, never a mix — the kubelet's AtomicWriter algorithm, which users of projected
 * volumes already rely on — without ever following a link or entering a directory it did not
 * just create or verify: it runs as root on a filesystem a pod may be able to write to.
 *
 *   1. Validate every path of the payload; refuse the whole payload on any bad one.
 *   2. Open the target (O_DIRECTORY|O_NOFOLLOW) and, with `device`, check it is the root of
 *      podvault's tmpfs; from here on every path goes through that fd (`/proc/self/fd/<fd>/…`).
 *   3. Verify the layout (`readLayout`): `..data` a symlink to a timestamped directory directly in
 *      the target, each visible name a link `<name> -> ..data/<name>`, nothing else but leftovers
 *      of an interrupted write; refuse naming the entry otherwise, having changed nothing.
 *   4. When the layout is complete and the files `..data` names equal the payload (paths, bytes
 *      and modes, read with O_NOFOLLOW; with a `group`, also the group of the root, of each file
 *      and directory), stop: nothing changed.
 *   5. `beforeChange()` (the tmpfs becomes writable), then remove leftovers of an interrupted write;
 *      with a `group`, fchown the root to it.
 *   6. Create a fresh hidden directory named after the current time (`..2026_11_23_12_00_00.XXXXXX`)
 *      and write every file into it with O_CREAT|O_EXCL|O_NOFOLLOW, each directory entered by fd;
 *      with a `group`, each directory and file is fchown'ed to it through its own fd.
 *   7. Point a new `..data_tmp` link at it and rename it over `..data` (rename is atomic).
 *   8. Create a user-visible link `<name> -> ..data/<name>` for each new top-level name.
 *   9. Unlink user-visible links that the new payload no longer has.
 *  10. Remove the old timestamped directory, entering each directory by fd on the same filesystem.
 *
 * Returns whether anything changed.
 */
export async function writeAtomically(targetDir: string, payload: readonly PayloadFile[], options: WriteOptions = {}): Promise<boolean> {
  // 1. Validate.
  validatePayload(payload);
  const { group } = options;
  const files = payload.map((f) => ({ ...f, mode: groupReadable(f.mode, group) }));

  // 2. Hold the target open.
  const root = await openTarget(targetDir, options.device);
  try {
    // 3. Verify what is there.
    const layout = await readLayout(root, targetDir);

    // 4. Compare.
    const rootGroupRight = group === undefined || (await root.gid()) === group;
    if (rootGroupRight && layout.dataDir && layout.complete && (await sameContents(root, layout.dataDir, files, group))) return false;

    // 5. Writable; drop an interrupted write's leftovers.
    await options.beforeChange?.();
    for (const name of layout.leftovers) await removeEntry(root, name, `${targetDir}/${name}`);
    if (group !== undefined) await root.chgrp(group); // the tmpfs is mounted root:root 0755


    // 6. Fresh timestamped directory with the files.
    const newDir = basename(await mkdtemp(root.child(`..${timestamp()}.`)));
    try {
      await writeFiles(root, newDir, files, group);

      // 7. Swap ..data.
      await symlink(newDir, root.child(DATA_DIR_TMP_LINK));
      await rename(root.child(DATA_DIR_TMP_LINK), root.child(DATA_DIR_LINK));
    } catch (err) {
      // Best effort: the error that matters is the one that stopped the write.
      await removeEntry(root, DATA_DIR_TMP_LINK, `${targetDir}/${DATA_DIR_TMP_LINK}`).catch(() => undefined);
      await removeEntry(root, newDir, `${targetDir}/${newDir}`).catch(() => undefined);
      throw err;
    }

    // 8. User-visible links for the new top-level names (verified ones are already right).
    const newTop = new Set(payload.map((f) => topLevel(f.path)));
    for (const name of newTop) {
      if (layout.visible.includes(name)) continue;
      try {
        await symlink(`${DATA_DIR_LINK}/${name}`, root.child(name));
      } catch (err) {
        if (codeOf(err) === 'EEXIST') throw failedPrecondition(`volume ${targetDir}: entry ${JSON.stringify(name)} appeared while podvault wrote the volume; left in place`, err);
        throw err;
      }
    }

    // 9. Drop links for names that are gone: unlink never follows a link, and a directory
    // swapped in meanwhile is not removed (EISDIR).
    for (const name of layout.visible) if (!newTop.has(name)) await unlink(root.child(name)).catch(ignore('ENOENT'));

    // 10. Drop the old data.
    if (layout.dataDir) await removeEntry(root, layout.dataDir, `${targetDir}/${layout.dataDir}`);
    return true;
  } finally {
    await root.close();
  }
}

function validatePayload(payload: readonly PayloadFile[]): void {
  const seen = new Set<string>();
  for (const file of payload) {
    const problem = payloadPathProblem(file.path);
    if (problem) throw invalidArgument(`file name ${JSON.stringify(file.path)} ${problem}`);
    if (seen.has(file.path)) throw invalidArgument(`file name ${JSON.stringify(file.path)} appears twice`);
    seen.add(file.path);
  }
  for (const path of seen) {
    for (let parent = dirname(path); parent !== '.'; parent = dirname(parent)) {
      if (seen.has(parent)) throw invalidArgument(`file name ${JSON.stringify(path)} lies inside file ${JSON.stringify(parent)}`);
    }
  }
}

async function openTarget(targetDir: string, device: bigint | undefined): Promise<DirHandle> {
  try {
    return await DirHandle.open(targetDir, device);
  } catch (err) {
    if (err instanceof DeviceMismatch) throw failedPrecondition(`volume ${targetDir} is not podvault's tmpfs; nothing was written`, err);
    throw failedPrecondition(`volume ${targetDir} is not a directory podvault can write (${codeOf(err) ?? 'error'}); nothing was written`, err);
  }
}

/** Step 6: every file of the payload below `root/<dirName>`, each directory entered by fd. */
async function writeFiles(root: DirHandle, dirName: string, payload: readonly PayloadFile[], group: number | undefined): Promise<void> {
  const top = await DirHandle.open(root.child(dirName), root.device);
  try {
    for (const file of payload) {
      const segments = file.path.split('/');
      const name = segments.pop()!;
      const opened: DirHandle[] = [];
      try {
        let dir = top;
        for (const segment of segments) {
          await mkdir(dir.child(segment), { mode: 0o755 }).catch(ignore('EEXIST'));
          dir = await DirHandle.open(dir.child(segment), root.device);
          opened.push(dir);
          if (group !== undefined) await dir.chgrp(group);
        }
        const handle = await open(dir.child(name), NEW_FILE, file.mode);
        try {
          await handle.writeFile(file.contents);
          if (group !== undefined) await handle.chown(-1, group); // before chmod: chown clears setgid bits
          await handle.chmod(file.mode); // the umask may have narrowed the mode given to open(2)
        } finally {
          await handle.close();
        }
      } finally {
        for (const dir of opened) await dir.close();
      }
    }
    if (group !== undefined) await top.chgrp(group);
    await top.chmod(0o755);
  } finally {
    await top.close();
  }
}

/** Step 4: whether `root/<dataDir>` holds exactly the payload; anything unexpected counts as a change. */
async function sameContents(root: DirHandle, dataDir: string, payload: readonly PayloadFile[], group: number | undefined): Promise<boolean> {
  const base = root.child(dataDir);
  const entries = await readdir(base, { recursive: true, withFileTypes: true });
  if (entries.some((e) => !e.isFile() && !e.isDirectory())) return false;
  if (group !== undefined) {
    // A volume written before the pod's group was known (or for another one) is rewritten.
    const dirs = [base, ...entries.filter((e) => e.isDirectory()).map((e) => `${e.parentPath}/${e.name}`)];
    for (const dir of dirs) if ((await lstat(dir)).gid !== group) return false;
  }
  const existing = entries.filter((e) => e.isFile()).map((e) => `${e.parentPath}/${e.name}`.slice(base.length + 1)).sort();
  if (existing.length !== payload.length) return false;
  const wanted = [...payload].sort((a, b) => (a.path < b.path ? -1 : 1));
  for (let i = 0; i < wanted.length; i++) {
    const file = wanted[i]!;
    if (existing[i] !== file.path) return false;
    if (!(await sameFile(`${base}/${file.path}`, file, root.device, group))) return false;
  }
  return true;
}

async function sameFile(path: string, file: PayloadFile, device: bigint, group: number | undefined): Promise<boolean> {
  let handle;
  try {
    handle = await open(path, READ_FILE);
  } catch {
    return false; // a link or something else swapped in: rewrite
  }
  try {
    const st = await handle.stat({ bigint: true });
    if (!st.isFile() || st.dev !== device || Number(st.mode & 0o7777n) !== file.mode || st.size !== BigInt(file.contents.length)) return false;
    if (group !== undefined && st.gid !== BigInt(group)) return false;
    return (await handle.readFile()).equals(file.contents);
  } finally {
    await handle.close();
  }
}

function timestamp(now = new Date()): string {
  const pad = (n: number, w = 2): string => String(n).padStart(w, '0');
  return `${now.getUTCFullYear()}_${pad(now.getUTCMonth() + 1)}_${pad(now.getUTCDate())}_${pad(now.getUTCHours())}_${pad(now.getUTCMinutes())}_${pad(now.getUTCSeconds())}`;
}
