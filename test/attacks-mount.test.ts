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

// Every tenant pod's secret, configMap and projected volume is a mount of the node: 110 pods of
// 100 volumes make a mount table of 11,000 lines (~800 KB), ~11 ms for the kernel to write out on
// each read. The probe must not hold the serving thread for that: past a large table it reads
// through the thread pool. Run in a private mount namespace (unshare -m), so the 12,000 mounts
// are seen by no other test.
describe.skipIf(!isRoot)('a mount table of 12,000 lines', () => {
  it("20 probes do not each hold the serving thread for a read of the table (as a synchronous read would)", async () => {
    const script = `
      import { mkdirSync, readFileSync } from 'node:fs';
      import { loadMountSyscalls } from './dist/src/driver/mount-syscalls.js';
      import { TmpfsMounter } from './dist/src/driver/mounter.js';
      const { syscalls } = loadMountSyscalls();
      syscalls.mount('none', '/', null, 0x40000 | 0x4000, null); // MS_PRIVATE | MS_REC: nothing propagates out
      const base = '/dev/shm';
      syscalls.mount('tmpfs', base, 'tmpfs', 0, 'size=16m');
      for (let i = 0; i < 12000; i++) { mkdirSync(base + '/v' + i); syscalls.mount('tmpfs', base + '/v' + i, 'tmpfs', 0, 'size=4k'); }
      mkdirSync(base + '/pod');
      const mounter = new TmpfsMounter();
      const target = base + '/pod/mount';
      if ((await mounter.mount(target, 65536)).kind !== 'podvault') throw new Error('not mounted');
      let t0 = performance.now();
      for (let i = 0; i < 10; i++) readFileSync('/proc/self/mountinfo', 'utf8');
      const readMs = (performance.now() - t0) / 10;
      let last = performance.now(), gaps = [];
      const ticker = setInterval(() => { const now = performance.now(); gaps.push(now - last); last = now; }, 0);
      await mounter.probe(target); // the first read may be synchronous: it learns the size
      await new Promise((r) => setTimeout(r, 20));
      last = performance.now(); gaps = [];
      for (let i = 0; i < 20; i++) {
        await new Promise((r) => setTimeout(r, 2)); // let the ticker run between probes
        if ((await mounter.probe(target)).kind !== 'podvault') throw new Error('probe');
      }
      await new Promise((r) => setTimeout(r, 2));
      clearInterval(ticker);
      process.stdout.write(JSON.stringify({ readMs, gaps }));
    `;
    const { stdout } = await promisify(execFile)('unshare', ['-m', process.execPath, '--input-type=module', '-e', script], { cwd: process.cwd(), timeout: 60_000 });
    const { readMs, gaps } = JSON.parse(stdout) as { readMs: number; gaps: number[] };
    expect(readMs).toBeGreaterThan(3); // the table is as large as meant
    // Read synchronously, each of the 20 probes stalls the loop at least one read long; through
    // the thread pool only scheduling noise on a busy machine does (2 shared cores here).
    expect(gaps.filter((g) => g >= readMs * 0.75).length).toBeLessThanOrEqual(5);
  }, 90_000);
});
