import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';

/** One line of /proc/self/mountinfo, the fields podvault needs. */
export interface MountEntry {
  /** `major:minor` of the mounted filesystem: what `st_dev` of a file on it names. */
  device: string;
  /** The directory of the filesystem mounted here (`/` unless a bind mount of a subdirectory). */
  root: string;
  mountPoint: string;
  /** Per-mount options (rw, nosuid, nodev, noexec, relatime...). */
  mountOptions: string[];
  fsType: string;
  source: string;
  /** Filesystem options (size=..., mode=...). */
  superOptions: string[];
}

/** mountinfo escapes space, tab, newline and backslash as \ooo octal. */
function unescapeOctal(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** The inverse of `unescapeOctal`: how the kernel writes a path into mountinfo. */
function escapeOctal(path: string): string {
  return path.replace(/[ \t\n\\]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
}

function parseLine(line: string): MountEntry | undefined {
  if (line.trim() === '') return undefined;
  const fields = line.split(' ');
  const separator = fields.indexOf('-');
  if (separator < 6 || fields.length < separator + 4) return undefined;
  return {
    device: fields[2] ?? '',
    root: unescapeOctal(fields[3] ?? ''),
    mountPoint: unescapeOctal(fields[4] ?? ''),
    mountOptions: (fields[5] ?? '').split(','),
    fsType: fields[separator + 1] ?? '',
    source: unescapeOctal(fields[separator + 2] ?? ''),
    superOptions: (fields[separator + 3] ?? '').split(','),
  };
}

export function parseMountInfo(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const entry = parseLine(line);
    if (entry) entries.push(entry);
  }
  return entries;
}

/** Which lines of the mount table to parse: those of a device, or those mounted at a path. */
export type MountFilter = { device: string } | { mountPoint: string };

/**
 * The lines of `text` that `filter` selects, parsed, in the table's order. Every other line is
 * skipped after a substring test, unparsed: a node with hundreds of pod volumes has as many lines,
 * and a probe wants one or two of them. The test is only a pre-filter; each candidate is parsed
 * in full and compared exactly, so the answer is that of `parseMountInfo(text).filter(...)`.
 */
export function selectMountInfo(text: string, filter: MountFilter): MountEntry[] {
  const needle = 'device' in filter ? ` ${filter.device} ` : ` ${escapeOctal(filter.mountPoint)} `;
  const entries: MountEntry[] = [];
  for (let start = 0; start < text.length; ) {
    let end = text.indexOf('\n', start);
    if (end === -1) end = text.length;
    const at = text.indexOf(needle, start);
    if (at === -1) break;
    if (at < end) {
      const entry = parseLine(text.slice(start, end));
      if (entry && ('device' in filter ? entry.device === filter.device : entry.mountPoint === filter.mountPoint)) entries.push(entry);
      start = end + 1;
    } else {
      start = text.lastIndexOf('\n', at) + 1; // jump to the line holding the next candidate
    }
  }
  return entries;
}

/**
 * Past this many bytes the table is read through the thread pool: a tenant's pods make a line per
 * secret, configMap and projected volume (110 pods of 100 volumes: ~800 KB, ~11 ms of kernel time
 * a read), and a synchronous read would hold the serving thread that long at every probe.
 */
export const MOUNTINFO_SYNC_BYTES = 64 * 1024;

/** Size of the last read of each table, to choose how to read it next. */
const lastSize = new Map<string, number>();

/**
 * One read of the mount table (see `readMountInfo`), the lines `filter` selects. Synchronous
 * while the table is small (as a node's is: under `MOUNTINFO_SYNC_BYTES`): the kernel writes
 * /proc/self/mountinfo from memory, and a synchronous read costs the driver a fraction of the CPU
 * of an asynchronous one (no thread-pool round trips; issue 9). Once a read finds the table
 * larger, the next ones go through the thread pool, so the serving thread waits for the kernel
 * at most once.
 */
export async function readMountInfoSelected(filter: MountFilter, path = '/proc/self/mountinfo'): Promise<MountEntry[]> {
  const text = (lastSize.get(path) ?? 0) > MOUNTINFO_SYNC_BYTES ? await readFile(path, 'utf8') : readFileSync(path, 'utf8');
  lastSize.set(path, text.length);
  return selectMountInfo(text, filter);
}

/**
 * The whole mount table. One read is a snapshot only when no mount changes meanwhile: the kernel
 * reads it out in chunks, and a mount or unmount between two chunks can make a line vanish from
 * that read. Answer "is X mounted" with `probeTarget` (stat-based), not with this.
 */
export async function readMountInfo(path = '/proc/self/mountinfo'): Promise<MountEntry[]> {
  return parseMountInfo(await readFile(path, 'utf8'));
}

/** The newest mount stacked on `mountPoint`, if any, from one read (see `readMountInfo`). */
export async function findMount(mountPoint: string): Promise<MountEntry | undefined> {
  const entries = await readMountInfo();
  for (let i = entries.length - 1; i >= 0; i--) {
    if (entries[i]?.mountPoint === mountPoint) return entries[i];
  }
  return undefined;
}

/** `major:minor` of a `st_dev`, as the kernel encodes it (new_decode_dev). */
export function deviceName(dev: bigint): string {
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  return `${major}:${minor}`;
}
