import { lstat, readdir, readlink } from 'node:fs/promises';
import { failedPrecondition } from '../errors/podvault-error.js';
import { codeOf, DirHandle, removeEntry } from './dir-handle.js';

export const DATA_DIR_LINK = '..data';
export const DATA_DIR_TMP_LINK = '..data_tmp';

/** The visible name a payload path sits under: `tls` for `tls/cert.pem`. */
export function topLevel(path: string): string {
  const slash = path.indexOf('/');
  return slash === -1 ? path : path.slice(0, slash);
}

/** The writer's own directory names: `..` + UTC time + `.` + mkdtemp's six characters. */
const DATA_DIR_NAME = /^\.\.\d{4}_\d{2}_\d{2}_\d{2}_\d{2}_\d{2}\.[A-Za-z0-9]{6}$/;

export function isDataDirName(name: string): boolean {
  return DATA_DIR_NAME.test(name);
}

/** What the top level of a volume holds, every entry verified to be the writer's own. */
export interface VolumeLayout {
  /** The timestamped directory `..data` points at; absent before the first swap. */
  dataDir?: string;
  /** Visible names, each a symlink `<name> -> ..data/<name>`. */
  visible: string[];
  /** Timestamped directories `..data` does not name and a `..data_tmp` link: an interrupted write. */
  leftovers: string[];
  /**
   * `..data` names a directory and every top-level name in it has its visible link: what a
   * finished write leaves. False for an empty volume (a driver killed between mount and swap).
   */
  complete: boolean;
}

/**
 * Read and verify the top level of a volume held open as `root`. `..data` must be a symlink to a
 * name of the writer's timestamped form that is a real directory directly in the root; every
 * other name must be a visible link `<name> -> ..data/<name>`, one of the writer's timestamped
 * directories or its `..data_tmp` link. Anything else (a re-pointed link, a planted file or
 * directory) is refused with an error naming the entry, before anything is written or deleted:
 * the writer runs as root, and a pod with a writable view must not steer it.
 */
export async function readLayout(root: DirHandle, target: string): Promise<VolumeLayout> {
  const refuse = (name: string, what: string): Error =>
    failedPrecondition(`volume ${target}: entry ${JSON.stringify(name)} ${what}, not what podvault wrote; nothing was written or deleted`);
  const names = (await readdir(root.path)).sort();
  let dataDir: string | undefined;
  if (names.includes(DATA_DIR_LINK)) {
    const st = await lstat(root.child(DATA_DIR_LINK));
    if (!st.isSymbolicLink()) throw refuse(DATA_DIR_LINK, 'is not a symbolic link');
    const points = await readlink(root.child(DATA_DIR_LINK));
    if (!isDataDirName(points) || !names.includes(points)) throw refuse(DATA_DIR_LINK, 'points somewhere else than a data directory of the volume');
    dataDir = points;
  }
  const visible: string[] = [];
  const leftovers: string[] = [];
  for (const name of names) {
    if (name === DATA_DIR_LINK) continue;
    const st = await lstat(root.child(name));
    if (isDataDirName(name)) {
      if (!st.isDirectory()) throw refuse(name, 'is not a directory');
      if (name !== dataDir) leftovers.push(name);
    } else if (name === DATA_DIR_TMP_LINK) {
      if (!st.isSymbolicLink()) throw refuse(name, 'is not a symbolic link');
      leftovers.push(name);
    } else {
      if (!st.isSymbolicLink() || (await readlink(root.child(name))) !== `${DATA_DIR_LINK}/${name}`) throw refuse(name, `is not a link to ${DATA_DIR_LINK}/${name}`);
      visible.push(name);
    }
  }
  if (!dataDir && visible.length > 0) throw refuse(visible[0]!, `is a link but there is no ${DATA_DIR_LINK}`);
  const complete = dataDir !== undefined && sameNames((await readdir(root.child(dataDir))).sort(), visible);
  return { ...(dataDir ? { dataDir } : {}), visible, leftovers, complete };
}

function sameNames(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((n, i) => n === b[i]);
}

/**
 * Remove what the writer created in `dir` (its layout, verified first), leaving the directory.
 * For the demo's directory "mount", which has no unmount to make its files go away.
 */
export async function removeVolumeFiles(dir: string): Promise<void> {
  let root: DirHandle;
  try {
    root = await DirHandle.open(dir);
  } catch (err) {
    if (codeOf(err) === 'ENOENT') return;
    throw err;
  }
  try {
    const layout = await readLayout(root, dir);
    for (const name of layout.visible) await removeEntry(root, name, `${dir}/${name}`);
    if (layout.dataDir) {
      await removeEntry(root, DATA_DIR_LINK, `${dir}/${DATA_DIR_LINK}`);
      await removeEntry(root, layout.dataDir, `${dir}/${layout.dataDir}`);
    }
    for (const name of layout.leftovers) await removeEntry(root, name, `${dir}/${name}`);
  } finally {
    await root.close();
  }
}
