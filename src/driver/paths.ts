import { lstatSync } from 'node:fs';
import { isAbsolute, posix } from 'node:path';
import { invalidArgument } from '../errors/podvault-error.js';

/** Limits of Linux names and paths; the kubelet's atomic writer uses the same. */
export const MAX_NAME_LENGTH = 255;
export const MAX_PATH_LENGTH = 4096;

/**
 * Check a file path a provider wants to write inside a volume: relative, at least one segment,
 * no `..` or `.` segments, no empty segments, no segment starting with `..` (those names are the
 * atomic writer's own), no NUL, within the length limits. Returns the problem, or undefined.
 */
export function payloadPathProblem(path: string): string | undefined {
  if (path === '') return 'must not be empty';
  if (path.includes('\0')) return 'must not contain a NUL byte';
  if (isAbsolute(path)) return 'must be a relative path';
  if (path.length > MAX_PATH_LENGTH) return `must be at most ${MAX_PATH_LENGTH} characters`;
  for (const segment of path.split('/')) {
    if (segment === '') return 'must not contain empty segments (// or a trailing /)';
    if (segment === '.' || segment === '..') return `must not contain a '${segment}' segment`;
    if (segment.startsWith('..')) return "must not have a segment starting with '..'";
    if (segment.length > MAX_NAME_LENGTH) return `must not have a segment longer than ${MAX_NAME_LENGTH} characters`;
  }
  return undefined;
}

/**
 * Validate a kubelet target path: absolute, normalised, strictly below the kubelet root, and
 * reached without following a symlink (each existing component below the root is checked with
 * lstat), so a crafted path cannot make us mount or delete somewhere else on the node. The lstat
 * calls are synchronous: on the kubelet's directories each answers from the dentry cache, and
 * through the thread pool the seven of a publish cost the driver several times the CPU (issue 9).
 */
export async function checkTargetPath(field: string, targetPath: string, kubeletDir: string): Promise<string> {
  if (!isAbsolute(targetPath)) throw invalidArgument(`${field} must be an absolute path`);
  if (targetPath.includes('\0') || targetPath.length > MAX_PATH_LENGTH) throw invalidArgument(`${field} is not a valid path`);
  const trimmed = targetPath.length > 1 && targetPath.endsWith('/') ? targetPath.slice(0, -1) : targetPath;
  if (posix.normalize(trimmed) !== trimmed) {
    throw invalidArgument(`${field} must be a normalised path without '.', '..' or repeated '/' segments`);
  }
  const root = kubeletDir.endsWith('/') ? kubeletDir : `${kubeletDir}/`;
  if (!trimmed.startsWith(root)) throw invalidArgument(`${field} must lie under the kubelet directory ${kubeletDir}`);

  let current = kubeletDir.replace(/\/$/, '');
  for (const segment of trimmed.slice(root.length).split('/')) {
    current = `${current}/${segment}`;
    let isSymlink: boolean;
    let isDirectory: boolean;
    try {
      const st = lstatSync(current);
      isSymlink = st.isSymbolicLink();
      isDirectory = st.isDirectory();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') break;
      throw err;
    }
    if (isSymlink) throw invalidArgument(`${field} must not pass through a symbolic link (${current})`);
    if (!isDirectory) throw invalidArgument(`${field} must not pass through a non-directory (${current})`);
  }
  return trimmed;
}
