import { createHash, randomBytes } from 'node:crypto';
import { lstat, mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import type { Logger } from '../log.js';
import { describeCause } from '../errors/describe-cause.js';
import type { MountedVolume } from './volume-table.js';

/**
 * The non-secret facts the driver needs to rotate and unpublish a volume after a restart, one JSON
 * file per volume in the state directory (a hostPath in the DaemonSet): pod, class or FlexVolume
 * parameters, target, versions. Never a value, a client secret or a token: those are not written,
 * so after a restart a volume whose identity came from nodePublishSecretRef rotates again once the
 * kubelet republishes it with its secret.
 *
 * A file is named by the sha256 of its volume id, never by the id itself: an id is the caller's
 * text (a `../` in it wrote outside the directory, a 253-character one made a name over the
 * filesystem's 255-byte limit, so the state was lost and the unpublish failed forever). What is
 * read back is not trusted either: `loadAll` keeps only files whose volume id hashes to their
 * name, and `NodeService.recover` checks the target against the mount table before using it.
 */
const stateSchema = z.object({
  volumeId: z.string().min(1).max(1024),
  target: z.string().min(1).max(4096),
  className: z.string(),
  inlineParameters: z.record(z.string(), z.string()).optional(),
  /** Published with a nodePublishSecretRef (its values are never written): see `awaitingSecrets`. */
  usesSecretRef: z.boolean().optional(),
  /** The pod's fsGroup: a timer rotation after a restart must keep the files readable to it. */
  mountGroup: z.number().int().min(1).max(2 ** 31 - 1).optional(),
  pod: z.object({ namespace: z.string(), name: z.string(), uid: z.string(), serviceAccount: z.string() }),
  fetchedAt: z.number(),
  versions: z.record(z.string(), z.string()),
});
export type VolumeState = z.infer<typeof stateSchema>;

/** One state file read back: its name (to discard it by) and what it says. */
export interface StoredVolume {
  file: string;
  state: VolumeState;
  /** Named `<volume id>.json` by a driver before this one: to be saved anew and removed. */
  legacy: boolean;
}

const STATE_FILE = /^[0-9a-f]{64}\.json$/;
/** What earlier drivers named a file: the volume id itself (publish-request.ts's id rule). */
const LEGACY_STATE_FILE = /^[-A-Za-z0-9._:]{1,200}\.json$/;
/** State files larger than this are not ours (a volume's facts are a few KiB at most). */
const MAX_STATE_BYTES = 256 * 1024;

export function stateFileName(volumeId: string): string {
  return `${createHash('sha256').update(volumeId, 'utf8').digest('hex')}.json`;
}

export class StateStore {
  constructor(
    private readonly dir: string,
    private readonly log: Logger,
  ) {}

  /**
   * Written atomically and durably, never rewritten in place: 1. write a fresh temp file;
   * 2. fsync it; 3. rename it over the state file; 4. fsync the directory, so a crash leaves
   * either the old facts or the new ones. Failures are logged, not thrown; false tells of one.
   */
  async save(volume: MountedVolume): Promise<boolean> {
    const state: VolumeState = {
      volumeId: volume.volumeId,
      target: volume.target,
      className: volume.request.className,
      ...(volume.request.inlineParameters ? { inlineParameters: volume.request.inlineParameters } : {}),
      ...(Object.keys(volume.request.secrets).length > 0 || volume.awaitingSecrets ? { usesSecretRef: true } : {}),
      ...(volume.request.mountGroup === undefined ? {} : { mountGroup: volume.request.mountGroup }),
      pod: volume.request.pod,
      fetchedAt: volume.fetchedAt,
      versions: volume.versions,
    };
    const file = join(this.dir, stateFileName(volume.volumeId));
    const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      await mkdir(this.dir, { recursive: true, mode: 0o700 });
      const handle = await open(tmp, 'wx', 0o600); // 1.
      try {
        await handle.writeFile(JSON.stringify(state));
        await handle.sync(); // 2.
      } finally {
        await handle.close();
      }
      await rename(tmp, file); // 3.
      const dir = await open(this.dir, 'r');
      await dir.sync().finally(() => dir.close()); // 4.
      return true;
    } catch (err) {
      await rm(tmp, { force: true }).catch(() => undefined);
      this.log.warn({ volumeId: volume.volumeId, cause: describeCause(err) }, 'could not record volume state; a restart would forget this volume until the kubelet republishes it');
      return false;
    }
  }

  async remove(volumeId: string): Promise<void> {
    await rm(join(this.dir, stateFileName(volumeId)), { force: true });
  }

  /**
   * Remove a file of the state directory by the name `readdir` gave (never by its volume id, which
   * is not to be trusted), saying why.
   */
  async discard(file: string, reason: string): Promise<void> {
    this.log.warn({ file, reason }, 'ignoring and removing a volume state file');
    await rm(join(this.dir, file), { force: true }).catch((err: unknown) => this.log.warn({ file, cause: describeCause(err) }, 'could not remove a volume state file'));
  }

  /**
   * The state files that parse and whose volume id hashes to their name. Anything else in the
   * directory (a tampered or foreign file, a temp file a crash left) is logged and removed.
   */
  async loadAll(): Promise<StoredVolume[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const stored: StoredVolume[] = [];
    for (const name of names) {
      const reason = await this.read(name).then(
        (state) => {
          if (typeof state === 'string') return state;
          stored.push({ file: name, state, legacy: !STATE_FILE.test(name) });
          return undefined;
        },
        (err: unknown) => {
          this.log.warn({ file: name, cause: describeCause(err) }, 'volume state file unreadable');
          return 'unreadable';
        },
      );
      if (reason) await this.discard(name, reason);
    }
    return stored;
  }

  /** A state file's contents, or why it is not one. */
  private async read(name: string): Promise<VolumeState | string> {
    if (!STATE_FILE.test(name) && !LEGACY_STATE_FILE.test(name)) return 'not a state file name (sha256 of the volume id)';
    // lstat first: a FIFO would block the read (and the driver's start) forever, a symlink
    // would read a file elsewhere on the node.
    const st = await lstat(join(this.dir, name));
    if (!st.isFile()) return 'not a regular file';
    if (st.size > MAX_STATE_BYTES) return 'too large';
    const parsed = stateSchema.safeParse(JSON.parse(await readFile(join(this.dir, name), 'utf8')));
    if (!parsed.success) return 'not a volume state';
    const { volumeId } = parsed.data;
    if (stateFileName(volumeId) !== name && `${volumeId}.json` !== name) return 'its volume id does not match its file name';
    return parsed.data;
  }
}
