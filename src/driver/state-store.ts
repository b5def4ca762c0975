import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
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
 */
const stateSchema = z.object({
  volumeId: z.string(),
  target: z.string(),
  className: z.string(),
  inlineParameters: z.record(z.string(), z.string()).optional(),
  pod: z.object({ namespace: z.string(), name: z.string(), uid: z.string(), serviceAccount: z.string() }),
  fetchedAt: z.number(),
  versions: z.record(z.string(), z.string()),
});
export type VolumeState = z.infer<typeof stateSchema>;

export class StateStore {
  constructor(
    private readonly dir: string,
    private readonly log: Logger,
  ) {}

  private file(volumeId: string): string {
    return join(this.dir, `${volumeId}.json`);
  }

  /** Written to a temp file and renamed, never rewritten in place. Failures are logged, not thrown. */
  async save(volume: MountedVolume): Promise<void> {
    const state: VolumeState = {
      volumeId: volume.volumeId,
      target: volume.target,
      className: volume.request.className,
      ...(volume.request.inlineParameters ? { inlineParameters: volume.request.inlineParameters } : {}),
      pod: volume.request.pod,
      fetchedAt: volume.fetchedAt,
      versions: volume.versions,
    };
    try {
      await mkdir(this.dir, { recursive: true, mode: 0o700 });
      const tmp = `${this.file(volume.volumeId)}.tmp`;
      await writeFile(tmp, JSON.stringify(state), { mode: 0o600 });
      await rename(tmp, this.file(volume.volumeId));
    } catch (err) {
      this.log.warn({ volumeId: volume.volumeId, cause: describeCause(err) }, 'could not record volume state; a restart would forget this volume until the kubelet republishes it');
    }
  }

  async remove(volumeId: string): Promise<void> {
    await rm(this.file(volumeId), { force: true });
  }

  async loadAll(): Promise<VolumeState[]> {
    let names: string[];
    try {
      names = (await readdir(this.dir)).filter((n) => n.endsWith('.json'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const states: VolumeState[] = [];
    for (const name of names) {
      try {
        states.push(stateSchema.parse(JSON.parse(await readFile(join(this.dir, name), 'utf8'))));
      } catch (err) {
        this.log.warn({ file: name, cause: describeCause(err) }, 'ignoring an unreadable volume state file');
      }
    }
    return states;
  }
}
