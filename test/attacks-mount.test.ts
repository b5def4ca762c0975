import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TmpfsMounter } from '../src/driver/mounter.js';
import { findMount, readMountInfo } from '../src/driver/mountinfo.js';
import { isRoot } from './support/harness.js';

// The adversary swaps the target, or one of its ancestors, for a symlink to another pod's volume
// between the probe and the unmount. Neither the addon's umount2 nor the mount(8) fallback may
// unmount where the link points.

describe.skipIf(!isRoot).each([
  ['the addon (mount(2))', false],
  ['the mount(8) fallback', true],
])('unmount through %s keeps the boundary', (_, mountUtility) => {
  const mounter = new TmpfsMounter({ mountUtility });
  let base: string;
  beforeAll(async () => {
    base = await mkdtemp('/dev/shm/podvault-attacks-mount-');
  });
  afterAll(async () => {
    for (const m of (await readMountInfo()).filter((e) => e.mountPoint.startsWith(`${base}/`)).reverse()) await promisify(execFile)('umount', [m.mountPoint]).catch(() => undefined);
    await rm(base, { recursive: true, force: true });
  });

  it('a target that is a symlink to another pod\'s volume: refused, that volume stays mounted (umount(8) as root would follow it)', async () => {
    expect(mounter.via).toBe(mountUtility ? 'mount(8)' : 'mount(2)');
    await mkdir(join(base, 'victim'));
    const victim = join(base, 'victim', 'mount');
    expect((await mounter.mount(victim, 65536)).kind).toBe('podvault');
    await mkdir(join(base, 'attacker'));
    const link = join(base, 'attacker', 'mount');
    await symlink(victim, link);
    await expect(mounter.unmount(link)).rejects.toMatchObject({ kind: 'failed-precondition', message: expect.stringMatching(/symbolic link|EINVAL/) });
    expect(await findMount(victim)).toMatchObject({ fsType: 'tmpfs', source: 'podvault' });
    await mounter.unmount(victim);
    expect(await findMount(victim)).toBeUndefined();
  });

  it('an ancestor swapped for a symlink to another pod\'s directory: refused by the parent fd check, that volume stays mounted', async () => {
    await mkdir(join(base, 'other', 'volume'), { recursive: true });
    const victim = join(base, 'other', 'volume', 'mount');
    expect((await mounter.mount(victim, 65536)).kind).toBe('podvault');
    await symlink(join(base, 'other'), join(base, 'linked'));
    await expect(mounter.unmount(join(base, 'linked', 'volume', 'mount'))).rejects.toMatchObject({ kind: 'failed-precondition', message: expect.stringContaining('symbolic link') });
    expect(await findMount(victim)).toMatchObject({ source: 'podvault' });
    await mounter.unmount(victim);
    expect(await findMount(victim)).toBeUndefined();
  });
});
