import { resourceExhausted } from '../errors/podvault-error.js';
import type { PayloadFile } from './atomic-writer.js';
import { DATA_DIR_LINK, topLevel } from './volume-layout.js';

/** tmpfs allocates whole pages. */
export const TMPFS_PAGE_BYTES = 4096;
/**
 * tmpfs keeps a symlink target of up to 128 bytes (with its NUL) in the inode and gives a longer
 * one a page (SHORT_SYMLINK_LEN in mm/shmem.c): a visible link `..data/<name>` with a long name.
 */
const SHORT_SYMLINK_BYTES = 128;
/** Headroom over two full payloads: the `..data` links and whatever rounding we did not count. */
const MOUNT_SLACK_BYTES = 16 * TMPFS_PAGE_BYTES;

/**
 * Bytes a payload takes on a tmpfs as tmpfs counts them: each file rounded up to whole pages. Each
 * directory is charged one page as well: tmpfs's `size=` does not count directories, yet each
 * costs the node ~1.3 KiB of kernel memory charged to the driver's cgroup, and a 60 KB class of
 * 15 aliases `<i>/a/a/…/a` (4 KB each) made 30,000 of them: 39 MiB for a volume whose files took
 * 60 KiB of a 4 MiB `--tmpfs-size`.
 */
export function tmpfsBytes(payload: readonly PayloadFile[]): number {
  const pages = (bytes: number): number => Math.ceil(bytes / TMPFS_PAGE_BYTES);
  let total = 0;
  for (const file of payload) total += pages(file.contents.length);
  const directories = new Set<string>();
  for (const file of payload) {
    for (let end = file.path.lastIndexOf('/'); end > 0; end = file.path.lastIndexOf('/', end - 1)) {
      const dir = file.path.slice(0, end);
      if (directories.has(dir)) break; // its parents are counted already
      directories.add(dir);
    }
  }
  total += directories.size;
  const top = new Set(payload.map((f) => topLevel(f.path)));
  for (const name of top) if (`${DATA_DIR_LINK}/${name}`.length + 1 > SHORT_SYMLINK_BYTES) total += 1;
  return total * TMPFS_PAGE_BYTES;
}

/**
 * The `size=` of a volume's tmpfs: `--tmpfs-size` is the limit of one volume's contents, and a
 * rotation holds the old and the new contents side by side until the swap, so the mount gets
 * twice that plus slack. A rotation of a volume within the limit therefore always fits.
 */
export function mountSizeBytes(contentLimitBytes: number): number {
  return 2 * contentLimitBytes + MOUNT_SLACK_BYTES;
}

/** Refuse, before anything is written, a payload over `--tmpfs-size`; returns its size. */
export function checkPayloadSize(payload: readonly PayloadFile[], contentLimitBytes: number): number {
  const bytes = tmpfsBytes(payload);
  if (bytes > contentLimitBytes) {
    throw resourceExhausted(
      `the volume's files take ${bytes} bytes on its tmpfs (each file rounded up to 4 KiB pages, each directory one page), over --tmpfs-size (${contentLimitBytes} bytes): raise --tmpfs-size or mount fewer or smaller objects`,
    );
  }
  return bytes;
}
