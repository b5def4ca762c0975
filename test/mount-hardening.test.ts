import { execFile } from 'node:child_process';
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rename, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { status } from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MountEngine } from '../src/driver/mount-engine.js';
import { ShmDirectoryMounter, TmpfsMounter } from '../src/driver/mounter.js';
import { findMount, readMountInfo } from '../src/driver/mountinfo.js';
import { isRoot, rpcError, startHarness } from './support/harness.js';
import type { Harness } from './support/harness.js';

const run = promisify(execFile);
const sh = async (cmd: string, ...args: string[]): Promise<void> => {
  await run(cmd, args);
};

/** A directory outside the kubelet's, with a file the driver must never touch. */
async function canaryDir(base: string, name: string): Promise<{ dir: string; listing: () => Promise<string[]> }> {
  const dir = join(base, name);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'canary'), 'must survive');
  await mkdir(join(dir, 'sub'));
  await writeFile(join(dir, 'sub', 'deep'), 'must survive too');
  return { dir, listing: async () => (await readdir(dir, { recursive: true })).sort() };
}

describe.skipIf(!isRoot)('mount hardening: the driver acts only on its own tmpfs', () => {
  let h: Harness;
  let outside: string;
  const cleanups: Array<() => Promise<unknown>> = [];

  beforeAll(async () => {
    h = await startHarness({ rotationInterval: '0s', vaultMaxAttempts: '1' }); // every republish refetches
    await h.writeClass('app', h.vaultParameters([{ objectName: 'db-user' }, { objectName: 'api-token', objectAlias: 'tokens/api' }]));
    outside = await mkdtemp('/dev/shm/podvault-outside-');
  });
  afterEach(async () => {
    h.vault.clearFaults();
    while (cleanups.length > 0) await cleanups.pop()!().catch(() => undefined);
  });
  afterAll(async () => {
    await h?.close();
    for (const m of (await readMountInfo()).filter((e) => e.mountPoint.startsWith(`${outside}/`)).reverse()) await sh('umount', m.mountPoint).catch(() => undefined);
    await rm(outside, { recursive: true, force: true });
  });

  const unpublishOf = (volumeId: string, targetPath: string) => h.client.unpublish({ volumeId, targetPath });
  const stillServing = async () => expect((await h.client.probe()).ready?.value).toBe(true);

  describe('finding 8: unpublish removes only what podvault made', () => {
    /** Another pod's emptyDir with a file in it. */
    async function otherPodsEmptyDir(): Promise<{ dir: string; file: string }> {
      const dir = join(h.kubeletDir, 'pods', '00000000-0000-4000-8000-0000000000e1', 'volumes', 'kubernetes.io~empty-dir', 'x');
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, 'data'), 'another pod');
      return { dir, file: join(dir, 'data') };
    }

    it.each([
      ['<kubelet>/pods', (): string => join(h.kubeletDir, 'pods')],
      ["another pod's emptyDir", (): string => join(h.kubeletDir, 'pods', '00000000-0000-4000-8000-0000000000e1', 'volumes', 'kubernetes.io~empty-dir', 'x')],
    ])('refuses %s as a target; the emptyDir and its file survive', async (_name, target) => {
      const { file } = await otherPodsEmptyDir();
      const err = await rpcError(unpublishOf('v-8a', target()));
      expect(err.code).toBe(status.INVALID_ARGUMENT);
      expect(err.details).toContain('target_path');
      expect(await readFile(file, 'utf8')).toBe('another pod');
      await stillServing();
    });

    it('a tmpfs that is not podvault\'s at a CSI-shaped target: FAILED_PRECONDITION naming it, nothing unmounted or deleted', async () => {
      const v = await h.volume();
      await mkdir(v.targetPath);
      await sh('mount', '-t', 'tmpfs', '-o', 'size=64k', 'someone-else', v.targetPath);
      cleanups.push(() => sh('umount', v.targetPath));
      await writeFile(join(v.targetPath, 'theirs'), 'keep');
      const err = await rpcError(unpublishOf(v.volumeId, v.targetPath));
      expect(err.code).toBe(status.FAILED_PRECONDITION);
      expect(err.details).toContain(v.targetPath);
      expect(err.details).toContain('not podvault');
      expect((await findMount(v.targetPath))?.source).toBe('someone-else');
      expect(await readFile(join(v.targetPath, 'theirs'), 'utf8')).toBe('keep');
      // ...and a publish there is refused too, before anything is fetched or mounted on top.
      const pub = await rpcError(h.client.publish(v.request));
      expect(pub.code).toBe(status.FAILED_PRECONDITION);
      expect((await readMountInfo()).filter((m) => m.mountPoint === v.targetPath)).toHaveLength(1);
      await stillServing();
    });

    it('a bind mount at a CSI-shaped target: FAILED_PRECONDITION, the bound directory and its files survive', async () => {
      const v = await h.volume();
      const canary = await canaryDir(outside, 'bound');
      const before = await canary.listing();
      await mkdir(v.targetPath);
      await sh('mount', '--bind', canary.dir, v.targetPath);
      cleanups.push(() => sh('umount', v.targetPath));
      const err = await rpcError(unpublishOf(v.volumeId, v.targetPath));
      expect(err.code).toBe(status.FAILED_PRECONDITION);
      expect(err.details).toContain(v.targetPath);
      expect(await findMount(v.targetPath)).toBeDefined();
      expect(await canary.listing()).toEqual(before);
      await stillServing();
    });

    it('a non-empty plain directory at the target is left in place and reported, never emptied', async () => {
      const v = await h.volume();
      await mkdir(v.targetPath);
      await writeFile(join(v.targetPath, 'not-ours'), 'keep');
      const err = await rpcError(unpublishOf(v.volumeId, v.targetPath));
      expect(err.code).toBe(status.FAILED_PRECONDITION);
      expect(err.details).toContain(`target_path ${v.targetPath} is not empty`);
      expect(await readFile(join(v.targetPath, 'not-ours'), 'utf8')).toBe('keep');
    });

    it('its own volume: unmounted, the empty directory removed', async () => {
      const v = await h.volume();
      await h.client.publish(v.request);
      await unpublishOf(v.volumeId, v.targetPath);
      expect(await findMount(v.targetPath)).toBeUndefined();
      await expect(lstat(v.targetPath)).rejects.toMatchObject({ code: 'ENOENT' });
      await unpublishOf(v.volumeId, v.targetPath); // idempotent
    });
  });

  describe('finding 2: a pod with a writable view cannot steer the writer', () => {
    /** Publish, then play a pod whose view is writable: the test (root) makes the tmpfs writable. */
    async function publishedWritable() {
      const v = await h.volume();
      await h.client.publish(v.request);
      cleanups.push(() => unpublishOf(v.volumeId, v.targetPath));
      await sh('mount', '-o', 'remount,rw', v.targetPath);
      const data = await readlink(join(v.targetPath, '..data'));
      return { v, data };
    }

    /** Trigger a rotation that would write: a new value in the vault, then the kubelet's republish. */
    async function rotate(v: { request: Parameters<Harness['client']['publish']>[0] }, value: string): Promise<void> {
      h.vault.store.setSecret('db-user', value);
      await h.client.publish(v.request); // OK by design: a failed rotation keeps the mount
    }

    const rotationFailedNaming = (entry: string): boolean =>
      h.logs.some((l) => l.includes('rotation failed') && l.includes(JSON.stringify(entry).slice(1, -1)));

    it('..data re-pointed at a directory outside: the rotation fails naming ..data, the outside files survive', async () => {
      const { v } = await publishedWritable();
      const canary = await canaryDir(outside, 'repointed');
      const before = await canary.listing();
      await symlink(canary.dir, join(v.targetPath, '..evil'));
      await rename(join(v.targetPath, '..evil'), join(v.targetPath, '..data'));
      await rotate(v, 'rotated-2a');
      expect(await canary.listing()).toEqual(before);
      expect((await findMount(v.targetPath))?.superOptions).toContain('ro'); // refused, and read-only again
      expect(await readFile(join(canary.dir, 'canary'), 'utf8')).toBe('must survive');
      expect(rotationFailedNaming('..data')).toBe(true);
      await stillServing();
    });

    it('a visible link replaced by a symlink to outside: nothing written or deleted there', async () => {
      const { v } = await publishedWritable();
      const canary = await canaryDir(outside, 'visible');
      const before = await canary.listing();
      await unlink(join(v.targetPath, 'tokens'));
      await symlink(canary.dir, join(v.targetPath, 'tokens'));
      await rotate(v, 'rotated-2b');
      expect(await canary.listing()).toEqual(before);
      expect(rotationFailedNaming('tokens')).toBe(true);
    });

    it('a planted directory name of the writer\'s form that is a symlink to outside: refused, nothing deleted there', async () => {
      const { v } = await publishedWritable();
      const canary = await canaryDir(outside, 'planted');
      const before = await canary.listing();
      await symlink(canary.dir, join(v.targetPath, '..2020_01_01_00_00_00.AAAAAA'));
      await rotate(v, 'rotated-2c');
      expect(await canary.listing()).toEqual(before);
      expect(rotationFailedNaming('..2020_01_01_00_00_00.AAAAAA')).toBe(true);
    });

    it('links planted inside the data directory are removed with it, never followed', async () => {
      const { v, data } = await publishedWritable();
      const canary = await canaryDir(outside, 'inside');
      const before = await canary.listing();
      await rm(join(v.targetPath, data, 'db-user'));
      await symlink(join(canary.dir, 'canary'), join(v.targetPath, data, 'db-user'));
      await rm(join(v.targetPath, data, 'tokens'), { recursive: true });
      await symlink(canary.dir, join(v.targetPath, data, 'tokens'));
      await rotate(v, 'rotated-2d');
      expect(await readFile(join(v.targetPath, 'db-user'), 'utf8')).toBe('rotated-2d'); // rotated
      await expect(lstat(join(v.targetPath, data))).rejects.toMatchObject({ code: 'ENOENT' });
      expect(await canary.listing()).toEqual(before);
    });

    it('the tmpfs is read-only between writes: a writable bind mount of a published target cannot be written (EROFS)', async () => {
      const v = await h.volume();
      await h.client.publish(v.request);
      cleanups.push(() => unpublishOf(v.volumeId, v.targetPath));
      const view = join(outside, 'pod-view');
      await mkdir(view, { recursive: true });
      await sh('mount', '--bind', v.targetPath, view); // read-write per mount, as a pod's rw volume
      cleanups.push(() => sh('umount', view));
      await expect(writeFile(join(view, 'x'), 'x')).rejects.toMatchObject({ code: 'EROFS' });
      await expect(rename(join(view, '..data'), join(view, '..moved'))).rejects.toMatchObject({ code: 'EROFS' });
      await rotate(v, 'rotated-ro');
      expect(await readFile(join(view, 'db-user'), 'utf8')).toBe('rotated-ro');
      await expect(writeFile(join(view, 'x'), 'x')).rejects.toMatchObject({ code: 'EROFS' });
      expect((await findMount(v.targetPath))?.superOptions).toContain('ro');
    });
  });

  describe('finding 10e: the mount lands on the directory that was checked', () => {
    const mounter = new TmpfsMounter();

    it('a parent swapped for a symlink to outside: refused, nothing created or mounted outside', async () => {
      const v = await h.volume();
      const parent = join(v.targetPath, '..');
      const away = join(outside, 'swapped-parent');
      await mkdir(away, { recursive: true });
      await rm(parent, { recursive: true });
      await symlink(away, parent);
      await expect(mounter.mount(v.targetPath, 65536)).rejects.toMatchObject({ kind: 'failed-precondition', message: expect.stringContaining(v.targetPath) });
      expect(await readdir(away)).toEqual([]);
      expect((await readMountInfo()).filter((m) => m.mountPoint.startsWith(outside))).toEqual([]);
      // Through the socket the same path is refused before anything is done.
      const err = await rpcError(h.client.publish(v.request));
      expect(err.code).toBe(status.INVALID_ARGUMENT);
      expect(await readdir(away)).toEqual([]);
    });

    it('an ancestor swapped for a symlink: the fd does not resolve to the target, refused', async () => {
      const v = await h.volume();
      const podDir = join(v.targetPath, '..', '..', '..', '..'); // <kubelet>/pods/<uid>
      const away = join(outside, 'swapped-pod');
      await rename(podDir, away);
      await symlink(away, podDir);
      await expect(mounter.mount(v.targetPath, 65536)).rejects.toMatchObject({ kind: 'failed-precondition', message: expect.stringContaining('symbolic link') });
      expect(await readdir(join(away, 'volumes', 'kubernetes.io~csi', 'secrets'))).toEqual([]);
      expect((await readMountInfo()).filter((m) => m.mountPoint.startsWith(outside))).toEqual([]);
    });

    it('a target that is a symlink: refused (O_NOFOLLOW), nothing mounted where it points', async () => {
      const v = await h.volume();
      const away = join(outside, 'link-target');
      await mkdir(away, { recursive: true });
      await symlink(away, v.targetPath);
      await expect(mounter.mount(v.targetPath, 65536)).rejects.toMatchObject({ kind: 'failed-precondition' });
      expect(await findMount(away)).toBeUndefined();
    });
  });

  describe('finding 6: a mounted but unfinished volume is published, not taken for a republish', () => {
    it('the crash state (podvault tmpfs mounted, empty) with the vault failing: UNAVAILABLE; healthy: the files appear', async () => {
      const v = await h.volume();
      await mkdir(v.targetPath);
      await sh('mount', '-t', 'tmpfs', '-o', 'size=1m,mode=0755', 'podvault', v.targetPath);
      cleanups.push(() => unpublishOf(v.volumeId, v.targetPath));
      await mkdir(join(v.targetPath, '..2026_01_01_00_00_00.Abc123')); // a write the crash interrupted
      await writeFile(join(v.targetPath, '..2026_01_01_00_00_00.Abc123', 'db-user'), 'half');
      h.vault.injectFault({ path: /^\/secrets\/db-user\//, status: 503, times: 100 });
      const err = await rpcError(h.client.publish(v.request));
      expect(err.code).toBe(status.UNAVAILABLE);
      h.vault.clearFaults();
      await h.client.publish(v.request);
      expect(await readFile(join(v.targetPath, 'tokens', 'api'), 'utf8')).toMatch(/never-log-me/);
      expect(await readdir(v.targetPath)).not.toContain('..2026_01_01_00_00_00.Abc123');
      expect((await readMountInfo()).filter((m) => m.mountPoint === v.targetPath)).toHaveLength(1); // no second tmpfs
      // The crash left it writable and small: now read-only, with room for a rotation.
      expect((await findMount(v.targetPath))?.superOptions).toEqual(expect.arrayContaining(['ro', 'size=8256k']));
    });
  });
});

describe.skipIf(!isRoot)('finding 9: --tmpfs-size limits the contents, and a rotation always fits', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ rotationInterval: '0s', tmpfsSize: '64Ki' });
    await h.writeClass('big', h.vaultParameters([{ objectName: 'db-user' }]));
    // 17 small files: far under the limit in bytes, over it in the 4 KiB pages tmpfs charges.
    await h.writeClass('many', h.vaultParameters(Array.from({ length: 17 }, (_, i) => ({ objectName: 'db-password', objectAlias: `p${i}` }))));
  });
  afterAll(async () => {
    await h?.close();
  });

  it('a file of ~60% of --tmpfs-size publishes and then rotates to a new version', async () => {
    h.vault.store.setSecret('db-user', 'a'.repeat(40_000)); // 10 pages of 16
    const v = await h.volume({ className: 'big' });
    await h.client.publish(v.request);
    h.vault.store.setSecret('db-user', 'b'.repeat(40_000));
    await h.client.publish(v.request); // a republish: the rotation needs old + new side by side
    expect(await readFile(join(v.targetPath, 'db-user'), 'utf8')).toBe('b'.repeat(40_000));
    expect(h.logs.some((l) => l.includes('rotation failed'))).toBe(false);
    await h.client.unpublish({ volumeId: v.volumeId, targetPath: v.targetPath });
  });

  it('a payload over the limit fails with RESOURCE_EXHAUSTED naming the total and --tmpfs-size, nothing mounted', async () => {
    h.vault.store.setSecret('db-user', 'c'.repeat(70_000));
    const v = await h.volume({ className: 'big' });
    const err = await rpcError(h.client.publish(v.request));
    expect(err.code).toBe(status.RESOURCE_EXHAUSTED);
    // The provider counts bytes as they arrive and refuses before the engine is reached.
    expect(err.details).toContain('65536 bytes (--tmpfs-size)');
    expect(err.details).not.toContain('ccc');
    expect(await findMount(v.targetPath)).toBeUndefined();
    await expect(lstat(v.targetPath)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('files under the limit in bytes but over it in tmpfs pages fail at the engine, naming the page total', async () => {
    const v = await h.volume({ className: 'many' });
    const err = await rpcError(h.client.publish(v.request));
    expect(err.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(err.details).toContain('69632 bytes'); // 17 pages
    expect(err.details).toContain('--tmpfs-size (65536 bytes)');
    expect(err.details).not.toContain('never-log-me');
    expect(await findMount(v.targetPath)).toBeUndefined();
    await expect(lstat(v.targetPath)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe("the demo's directory stand-in (no root, no mount) cleans up only what it created", () => {
  let base: string;
  beforeAll(async () => {
    base = await mkdtemp('/dev/shm/podvault-shm-');
  });
  afterAll(async () => {
    await rm(base, { recursive: true, force: true });
  });
  const payload = [
    { path: 'a', mode: 0o644, contents: Buffer.from('1') },
    { path: 'sub/b', mode: 0o600, contents: Buffer.from('2') },
  ];

  it('unpublish removes the files, links and data directories it wrote, then the empty directory', async () => {
    const engine = new MountEngine({ mounter: new ShmDirectoryMounter(), tmpfsSizeBytes: 65536 });
    const target = join(base, 'one', 'mount');
    await mkdir(join(base, 'one'));
    await engine.publish(target, payload);
    await engine.publish(target, [...payload, { path: 'c', mode: 0o644, contents: Buffer.from('3') }]);
    expect(await readFile(join(target, 'sub', 'b'), 'utf8')).toBe('2');
    await engine.unpublish(target);
    await expect(lstat(target)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('something it did not write is left in place, with the directory, and reported', async () => {
    const engine = new MountEngine({ mounter: new ShmDirectoryMounter(), tmpfsSizeBytes: 65536 });
    const target = join(base, 'two', 'mount');
    await mkdir(join(base, 'two'));
    await engine.publish(target, payload);
    await mkdir(join(target, '..2020_01_01_00_00_00.AAAAAA')); // a directory of the writer's form...
    await writeFile(join(target, '..2020_01_01_00_00_00.AAAAAA', 'x'), 'x');
    await writeFile(join(target, 'someone-elses'), 'keep'); // ...and a file that is not its own
    await expect(engine.unpublish(target)).rejects.toMatchObject({ kind: 'failed-precondition', message: expect.stringContaining('"someone-elses"') });
    expect(await readFile(join(target, 'someone-elses'), 'utf8')).toBe('keep');
  });
});
