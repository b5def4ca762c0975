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

// Path names are the one part of a mountinfo line a neighbour chooses: the kernel escapes space,
// tab, newline and backslash, so a name cannot end its line or forge the " - tmpfs podvault"
// separator. The probe must read such lines as they are.
describe.skipIf(!isRoot)('mount-table lines crafted through path names', () => {
  const mounter = new TmpfsMounter();
  let base: string;
  beforeAll(async () => {
    base = await mkdtemp('/dev/shm/podvault-attacks-mountinfo-');
  });
  afterAll(async () => {
    for (const m of (await readMountInfo()).filter((e) => e.mountPoint.startsWith(`${base}/`)).reverse()) await promisify(execFile)('umount', [m.mountPoint]).catch(() => undefined);
    await rm(base, { recursive: true, force: true });
  });

  const crafted = [
    ['a newline and a forged podvault line', (dev: string) => `t\n99 1 ${dev} \\ x rw - tmpfs podvault rw,size=64k`],
    ['the separator with spaces', () => 'x - tmpfs podvault rw,size=64k'],
    ['a literal \\040 and a backslash', () => 'a\\040b\\c'],
  ] as const;

  it.each(crafted)('a tmpfs that is not podvault\'s at a name with %s is "other"; podvault\'s own at that name is podvault\'s', async (_, name) => {
    const dir = await mkdtemp(join(base, 'pod-'));
    const foreign = join(dir, name('0:1'));
    await mkdir(foreign);
    await promisify(execFile)('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', foreign]);
    expect(await mounter.probe(foreign)).toMatchObject({ kind: 'other', what: expect.stringContaining('tmpfs filesystem from "tmpfs"') });
    await promisify(execFile)('umount', [foreign]);
    expect(await mounter.probe(foreign)).toEqual({ kind: 'directory' });
    const own = join(dir, name('0:1').replace(/^./, 'o'));
    expect((await mounter.mount(own, 65536)).kind).toBe('podvault');
    await mounter.unmount(own);
    expect(await mounter.probe(own)).toEqual({ kind: 'directory' });
  });

  it('a foreign tmpfs stacked on podvault\'s: "other", and unpublish\'s unmount is never reached (the stack stays)', async () => {
    await mkdir(join(base, 'stack'));
    const target = join(base, 'stack', 'mount');
    expect((await mounter.mount(target, 65536)).kind).toBe('podvault');
    await promisify(execFile)('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'podvault-lookalike', target]);
    expect(await mounter.probe(target)).toMatchObject({ kind: 'other', what: expect.stringContaining('podvault-lookalike') });
    await promisify(execFile)('umount', [target]);
    expect((await mounter.probe(target)).kind).toBe('podvault');
    await mounter.unmount(target);
  });
});
