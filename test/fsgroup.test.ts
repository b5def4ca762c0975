import { execFile } from 'node:child_process';
import { chmod, lstat, mkdtemp, rm, rmdir, mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { status } from '@grpc/grpc-js';
import { isRoot, rpcError, SECRET_VALUES, startHarness } from './support/harness.js';
import type { Harness } from './support/harness.js';
import type { EphemeralVolume } from '../src/driver/kubelet-volume.js';

const exec = promisify(execFile);
const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The pod's fsGroup in these tests, and the non-root user of the reading "container". */
const GROUP = 4321;
const NOBODY = 65534;
const FILES = ['db-user', 'db-password', 'tokens/api'];

/**
 * Read every file as `uid`:`gid` with no supplementary groups (libuv drops them when spawning with
 * uid/gid), the way a container whose runAsUser is non-root and whose only way in is its fsGroup
 * reads its volume. Each file's contents, or the errno code that stopped the read.
 */
async function readAs(dir: string, uid: number, gid: number): Promise<Record<string, string>> {
  const script = `const fs = require('node:fs'); const out = {};
    for (const f of JSON.parse(process.argv[1])) { try { out[f] = fs.readFileSync(process.argv[2] + '/' + f, 'utf8'); } catch (e) { out[f] = e.code; } }
    process.stdout.write(JSON.stringify(out));`;
  const { stdout } = await exec(process.execPath, ['-e', script, JSON.stringify(FILES), dir], { uid, gid, cwd: '/' });
  return JSON.parse(stdout) as Record<string, string>;
}

describe.skipIf(!isRoot)('fsGroup (VOLUME_MOUNT_GROUP): files a non-root pod can read', () => {
  let h: Harness;
  /** Where the "container" sees its volume: a bind mount, as the runtime makes one. */
  let containerDir: string;
  beforeAll(async () => {
    h = await startHarness({ rotationInterval: '1s' });
    await h.writeClass('app', h.vaultParameters([{ objectName: 'db-user', filePermission: '0600' }, { objectName: 'db-password', filePermission: '0640' }, { objectName: 'api-token', objectAlias: 'tokens/api', filePermission: '0400' }]));
    containerDir = await mkdtemp('/dev/shm/podvault-container-');
    await chmod(containerDir, 0o755); // the test's stand-in for the container's root: others may enter
  });
  afterAll(async () => {
    await h?.close();
    if (containerDir) await rm(containerDir, { recursive: true, force: true });
  });

  /** Bind the volume where a uid without access to the kubelet's directories can reach it. */
  async function asContainerSees<T>(v: EphemeralVolume, work: (dir: string) => Promise<T>): Promise<T> {
    const dir = join(containerDir, 'mnt');
    await mkdir(dir, { mode: 0o755 });
    await exec('mount', ['--bind', v.targetPath, dir]);
    try {
      return await work(dir);
    } finally {
      await exec('umount', [dir]);
      await rmdir(dir);
    }
  }

  it('a publish with volume_mount_group: a reader only in that group reads every file, also after a rotation', async () => {
    const v = await h.volume({ mountGroup: String(GROUP) });
    await h.client.publish(v.request);
    const root = await stat(v.targetPath);
    expect({ gid: root.gid, mode: root.mode & 0o7777 }).toEqual({ gid: GROUP, mode: 0o755 });
    // filePermission kept for owner and other, group read added.
    const modes = await Promise.all(FILES.map(async (f) => ((await stat(join(v.targetPath, f))).mode & 0o7777).toString(8)));
    expect(modes).toEqual(['640', '640', '440']);
    for (const f of FILES) expect((await stat(join(v.targetPath, f))).gid).toBe(GROUP);
    expect((await stat(join(v.targetPath, 'tokens'))).gid).toBe(GROUP);
    expect((await lstat(join(v.targetPath, '..data'))).isSymbolicLink()).toBe(true);

    await asContainerSees(v, async (dir) => {
      expect(await readAs(dir, NOBODY, GROUP)).toEqual({ 'db-user': 'app', 'db-password': SECRET_VALUES.dbPassword, 'tokens/api': SECRET_VALUES.apiToken });
      // Another group's member gets nothing from the grant: it is the group that opens the files.
      expect(await readAs(dir, NOBODY, GROUP + 1)).toEqual({ 'db-user': 'EACCES', 'db-password': 'EACCES', 'tokens/api': 'EACCES' });

      h.vault.store.setSecret('db-user', 'app-v2');
      await wait(1100);
      await h.client.publish(v.request); // the kubelet's republish: a rotation
      expect(await readAs(dir, NOBODY, GROUP)).toMatchObject({ 'db-user': 'app-v2', 'db-password': SECRET_VALUES.dbPassword, 'tokens/api': SECRET_VALUES.apiToken });
    });
    expect((await stat(join(v.targetPath, 'db-user'))).gid).toBe(GROUP);
    await h.client.unpublish({ volumeId: v.volumeId, targetPath: v.targetPath });
  });

  it('without volume_mount_group nothing changes: root:root, filePermission as given, the group member is refused', async () => {
    const v = await h.volume();
    await h.client.publish(v.request);
    expect((await stat(v.targetPath)).gid).toBe(0);
    const modes = await Promise.all(FILES.map(async (f) => ((await stat(join(v.targetPath, f))).mode & 0o7777).toString(8)));
    expect(modes).toEqual(['600', '640', '400']);
    for (const f of FILES) expect((await stat(join(v.targetPath, f))).gid).toBe(0);
    await asContainerSees(v, async (dir) => {
      expect(await readAs(dir, NOBODY, GROUP)).toEqual({ 'db-user': 'EACCES', 'db-password': 'EACCES', 'tokens/api': 'EACCES' });
    });
    await h.client.unpublish({ volumeId: v.volumeId, targetPath: v.targetPath });
  });

  it.each(['0', '-5', '+5', '0x10', '1e3', ' 5', 'abc', '2147483648', '99999999999', '5.0'])('refuses volume_mount_group %j with INVALID_ARGUMENT naming the field, mounting nothing', async (bad) => {
    const v = await h.volume({ mountGroup: bad });
    const err = await rpcError(h.client.publish(v.request));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toContain('volume_capability.mount.volume_mount_group');
    await expect(stat(v.targetPath)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('accepts the largest gid, 2^31-1', async () => {
    const v = await h.volume({ mountGroup: String(2 ** 31 - 1) });
    await h.client.publish(v.request);
    expect((await stat(join(v.targetPath, 'db-user'))).gid).toBe(2 ** 31 - 1);
    await h.client.unpublish({ volumeId: v.volumeId, targetPath: v.targetPath });
  });
});
