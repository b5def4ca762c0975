import { chmod, lstat, mkdir, mkdtemp, readdir, readFile, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { invalidArgument } from '../errors/podvault-error.js';
import { payloadPathProblem } from './paths.js';

/** One file a volume should hold. */
export interface PayloadFile {
  /** Relative path inside the volume, e.g. `db-password` or `tls/cert.pem`. */
  path: string;
  /** Permission bits, e.g. 0o644. */
  mode: number;
  contents: Buffer;
}

export const DATA_DIR_LINK = '..data';
const DATA_DIR_TMP_LINK = '..data_tmp';

/**
 * Write a set of files into `targetDir` so that a reader sees either the whole old set or the
 * whole new set, never a mix — the kubelet's AtomicWriter algorithm, which users of projected
 * volumes already rely on:
 *
 *   1. Validate every path of the payload; refuse the whole payload on any bad one.
 *   2. Read the current `..data` link, if any; when the files it points at equal the payload
 *      (paths, bytes and modes), stop: nothing changed.
 *   3. Create a fresh hidden directory named after the current time (`..2026_11_23_12_00_00.XXXXXX`).
 *   4. Write every file into it with its mode.
 *   5. Point a new `..data_tmp` link at it and rename it over `..data` (rename is atomic).
 *   6. Create a user-visible link `<name> -> ..data/<name>` for each top-level name.
 *   7. Remove user-visible links that the new payload no longer has.
 *   8. Remove the old timestamped directory.
 *
 * Returns whether anything changed.
 */
export async function writeAtomically(targetDir: string, payload: readonly PayloadFile[]): Promise<boolean> {
  // 1. Validate.
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

  // 2. Compare with what is there.
  const oldDirName = await readLinkIfPresent(join(targetDir, DATA_DIR_LINK));
  const oldPaths = oldDirName ? await listFiles(join(targetDir, oldDirName)) : [];
  if (oldDirName && (await sameContents(join(targetDir, oldDirName), oldPaths, payload))) return false;

  // 3. Fresh timestamped directory.
  const newDir = await mkdtemp(join(targetDir, `..${timestamp()}.`));
  try {
    // 4. Files.
    for (const file of payload) {
      const full = join(newDir, file.path);
      await mkdir(dirname(full), { recursive: true, mode: 0o755 });
      await writeFile(full, file.contents, { mode: file.mode, flag: 'wx' });
      await chmod(full, file.mode); // the umask may have narrowed the mode given to open(2)
    }
    await chmod(newDir, 0o755);

    // 5. Swap ..data.
    const tmpLink = join(targetDir, DATA_DIR_TMP_LINK);
    await rm(tmpLink, { force: true });
    await symlink(basename(newDir), tmpLink);
    await rename(tmpLink, join(targetDir, DATA_DIR_LINK));
  } catch (err) {
    await rm(newDir, { recursive: true, force: true });
    throw err;
  }

  // 6. User-visible links for the new top-level names.
  const newTop = new Set(payload.map((f) => topLevel(f.path)));
  for (const name of newTop) {
    const link = join(targetDir, name);
    if ((await readLinkIfPresent(link)) !== join(DATA_DIR_LINK, name)) {
      await rm(link, { recursive: true, force: true });
      await symlink(join(DATA_DIR_LINK, name), link);
    }
  }

  // 7. Drop links for names that are gone.
  for (const name of new Set(oldPaths.map(topLevel))) {
    if (!newTop.has(name)) await rm(join(targetDir, name), { force: true });
  }

  // 8. Drop the old data.
  if (oldDirName) await rm(join(targetDir, oldDirName), { recursive: true, force: true });
  return true;
}

function topLevel(path: string): string {
  const slash = path.indexOf('/');
  return slash === -1 ? path : path.slice(0, slash);
}

async function readLinkIfPresent(path: string): Promise<string | undefined> {
  try {
    return await readlink(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EINVAL') return undefined;
    throw err;
  }
}

/** Relative paths of the regular files below `dir`. */
async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
    .sort();
}

async function sameContents(dir: string, existing: string[], payload: readonly PayloadFile[]): Promise<boolean> {
  if (existing.length !== payload.length) return false;
  const wanted = [...payload].sort((a, b) => (a.path < b.path ? -1 : 1));
  for (let i = 0; i < wanted.length; i++) {
    const file = wanted[i]!;
    if (existing[i] !== file.path) return false;
    const full = join(dir, file.path);
    const st = await lstat(full);
    if ((st.mode & 0o7777) !== file.mode) return false;
    if (st.size !== file.contents.length || !(await readFile(full)).equals(file.contents)) return false;
  }
  return true;
}

function timestamp(now = new Date()): string {
  const pad = (n: number, w = 2): string => String(n).padStart(w, '0');
  return `${now.getUTCFullYear()}_${pad(now.getUTCMonth() + 1)}_${pad(now.getUTCDate())}_${pad(now.getUTCHours())}_${pad(now.getUTCMinutes())}_${pad(now.getUTCSeconds())}`;
}
