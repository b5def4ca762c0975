import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadMountSyscalls, loadMountSyscallsFrom } from '../src/driver/mount-syscalls.js';
import { TmpfsMounter } from '../src/driver/mounter.js';
import { findMount, readMountInfo } from '../src/driver/mountinfo.js';
import { isRoot, startHarness } from './support/harness.js';
import type { Harness } from './support/harness.js';

const sh = async (cmd: string, ...args: string[]): Promise<void> => {
  await promisify(execFile)(cmd, args);
};

/** The flags and options every podvault tmpfs carries, whichever way it was mounted. */
async function expectPodvaultTmpfs(target: string, readOnly: boolean): Promise<void> {
  const entry = await findMount(target);
  expect(entry).toMatchObject({ fsType: 'tmpfs', source: 'podvault', root: '/' });
  expect(entry?.mountOptions).toEqual(expect.arrayContaining(['nosuid', 'nodev', 'noexec']));
  expect(entry?.superOptions).toEqual(expect.arrayContaining([readOnly ? 'ro' : 'rw', 'mode=755']));
}

describe("podvault's mount(2) addon", () => {
  it('is built by prepare and loads here (CI runs npm ci, which runs prepare)', () => {
    const load = loadMountSyscalls();
    expect(load.syscalls ? 'loaded' : load.reason).toBe('loaded');
    expect(new TmpfsMounter().via).toBe('mount(2)');
  });

  it('a missing addon is reported with its reason, and the mounter falls back to mount(8)', () => {
    const load = loadMountSyscallsFrom('/nonexistent/podvault_mount.node');
    expect(load.syscalls).toBeUndefined();
    expect(load.syscalls ? '' : load.reason).toContain('is not built');
    expect(new TmpfsMounter({ mountUtility: true })).toMatchObject({ via: 'mount(8)', fallbackReason: '--mount-utility' });
  });

  it('a failed syscall throws an error carrying the errno and its name', () => {
    const { syscalls } = loadMountSyscalls();
    expect(() => syscalls?.umount2('/nonexistent-podvault-path', syscalls.flags.UMOUNT_NOFOLLOW)).toThrow(expect.objectContaining({ code: 'ENOENT', errno: 2, syscall: 'umount2' }));
    // Strings with an embedded NUL would name a shorter path: refused before the syscall.
    expect(() => syscalls?.umount2('/tmp\0/x', 0)).toThrow(TypeError);
  });
});

describe.skipIf(!isRoot)('the addon path keeps the mount boundary', () => {
  const mounter = new TmpfsMounter();
  let base: string;
  beforeAll(async () => {
    base = await mkdtemp('/dev/shm/podvault-syscalls-');
  });
  afterAll(async () => {
    for (const m of (await readMountInfo()).filter((e) => e.mountPoint.startsWith(`${base}/`)).reverse()) await sh('umount', m.mountPoint).catch(() => undefined);
    await rm(base, { recursive: true, force: true });
  });

  it('mounts nosuid,nodev,noexec with size and mode, remounts the filesystem read-only and back, unmounts', async () => {
    expect(mounter.via).toBe('mount(2)');
    const target = join(base, 'plain', 'target');
    await mkdir(join(base, 'plain'));
    const state = await mounter.mount(target, 1024 * 1024);
    if (state.kind !== 'podvault') throw new Error(`expected podvault's tmpfs, found ${state.kind}`);
    await expectPodvaultTmpfs(target, false);
    expect((await findMount(target))?.superOptions).toContain('size=1024k');
    // A bind mount (as a pod's writable view): read-only is the filesystem's, so it holds there too.
    const view = join(base, 'plain', 'view');
    await mkdir(view);
    await sh('mount', '--bind', target, view);
    await mounter.setWritable(target, state.device, false, 1024 * 1024);
    await expectPodvaultTmpfs(target, true);
    await expect(writeFile(join(view, 'x'), 'x')).rejects.toMatchObject({ code: 'EROFS' });
    await mounter.setWritable(target, state.device, true, 2 * 1024 * 1024);
    await expectPodvaultTmpfs(target, false);
    expect((await findMount(target))?.superOptions).toContain('size=2048k');
    await sh('umount', view);
    await mounter.unmount(target);
    expect(await mounter.probe(target)).toEqual({ kind: 'directory' });
  });

  it('a target swapped for a symlink: refused, nothing mounted where it points', async () => {
    const away = join(base, 'away');
    await mkdir(away);
    await writeFile(join(away, 'canary'), 'must survive');
    await mkdir(join(base, 'pod'));
    const target = join(base, 'pod', 'target');
    await symlink(away, target);
    await expect(mounter.mount(target, 65536)).rejects.toMatchObject({ kind: 'failed-precondition', message: expect.stringContaining(target) });
    expect(await findMount(away)).toBeUndefined();
    expect(await readdir(away)).toEqual(['canary']);
  });

  it('an ancestor swapped for a symlink: refused by the fd check, nothing mounted outside', async () => {
    const realParent = join(base, 'elsewhere');
    await mkdir(join(realParent, 'pod', 'target'), { recursive: true });
    await symlink(realParent, join(base, 'linked'));
    const target = join(base, 'linked', 'pod', 'target');
    await expect(mounter.mount(target, 65536)).rejects.toMatchObject({ kind: 'failed-precondition', message: expect.stringContaining('symbolic link') });
    expect(await findMount(join(realParent, 'pod', 'target'))).toBeUndefined();
  });

  it('unmount does not follow a symlink in the last component (UMOUNT_NOFOLLOW)', async () => {
    await mkdir(join(base, 'nofollow'));
    const target = join(base, 'nofollow', 'target');
    expect((await mounter.mount(target, 65536)).kind).toBe('podvault');
    const link = join(base, 'nofollow', 'link');
    await symlink(target, link);
    await expect(mounter.unmount(link)).rejects.toMatchObject({ kind: 'failed-precondition', message: expect.stringContaining('EINVAL') });
    await expectPodvaultTmpfs(target, false);
    await mounter.unmount(target);
  });
});

describe.skipIf(!isRoot)('--mount-utility: the mount(8) fallback still publishes, rotates and unpublishes', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ mountUtility: true, rotationInterval: '0s' });
    await h.writeClass('app', h.vaultParameters([{ objectName: 'db-user' }]));
  });
  afterAll(async () => {
    await h?.close();
  });

  it('says so once at start, then mounts with mount(8) with the same flags', async () => {
    expect(h.logs.filter((l) => l.includes('--mount-utility'))).toHaveLength(1);
    const v = await h.volume({ className: 'app' });
    await h.client.publish(v.request);
    await expectPodvaultTmpfs(v.targetPath, true);
    h.vault.store.setSecret('db-user', 'rotated-by-mount8');
    await h.client.publish(v.request); // a republish: remount rw, write, remount ro
    expect(await readFile(join(v.targetPath, 'db-user'), 'utf8')).toBe('rotated-by-mount8');
    await expectPodvaultTmpfs(v.targetPath, true);
    await h.client.unpublish({ volumeId: v.volumeId, targetPath: v.targetPath });
    expect(await findMount(v.targetPath)).toBeUndefined();
  });
});
