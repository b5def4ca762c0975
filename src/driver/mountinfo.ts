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

export function parseMountInfo(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const fields = line.split(' ');
    const separator = fields.indexOf('-');
    if (separator < 6 || fields.length < separator + 4) continue;
    entries.push({
      device: fields[2] ?? '',
      root: unescapeOctal(fields[3] ?? ''),
      mountPoint: unescapeOctal(fields[4] ?? ''),
      mountOptions: (fields[5] ?? '').split(','),
      fsType: fields[separator + 1] ?? '',
      source: unescapeOctal(fields[separator + 2] ?? ''),
      superOptions: (fields[separator + 3] ?? '').split(','),
    });
  }
  return entries;
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
