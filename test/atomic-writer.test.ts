import { spawn } from 'node:child_process';
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeAtomically } from '../src/driver/atomic-writer.js';
import type { PayloadFile } from '../src/driver/atomic-writer.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp('/dev/shm/podvault-writer-');
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const file = (path: string, text: string, mode = 0o644): PayloadFile => ({ path, mode, contents: Buffer.from(text) });

describe('atomic writer', () => {
  it('lays files out as the kubelet does: timestamped dir, ..data link, one visible link per top-level name', async () => {
    expect(await writeAtomically(dir, [file('a', '1'), file('sub/b', '2', 0o600)])).toBe(true);
    const data = await readlink(join(dir, '..data'));
    expect(data).toMatch(/^\.\.\d{4}_\d{2}_\d{2}_\d{2}_\d{2}_\d{2}\./);
    expect(await readlink(join(dir, 'a'))).toBe('..data/a');
    expect(await readlink(join(dir, 'sub'))).toBe('..data/sub');
    expect(await readFile(join(dir, 'sub/b'), 'utf8')).toBe('2');
    expect((await lstat(join(dir, data, 'sub/b'))).mode & 0o777).toBe(0o600);
    expect((await readdir(dir)).sort()).toEqual([data, '..data', 'a', 'sub'].sort());
  });

  it('skips the swap when nothing changed, and swaps when a byte or a mode did', async () => {
    await writeAtomically(dir, [file('a', '1')]);
    const first = await readlink(join(dir, '..data'));
    expect(await writeAtomically(dir, [file('a', '1')])).toBe(false);
    expect(await readlink(join(dir, '..data'))).toBe(first);
    expect(await writeAtomically(dir, [file('a', '1', 0o640)])).toBe(true);
    expect(await writeAtomically(dir, [file('a', '2', 0o640)])).toBe(true);
    expect(await readFile(join(dir, 'a'), 'utf8')).toBe('2');
  });

  it('removes names that left the payload and the old data directory', async () => {
    await writeAtomically(dir, [file('a', '1'), file('gone', 'x')]);
    await writeAtomically(dir, [file('a', '2')]);
    const data = await readlink(join(dir, '..data'));
    expect((await readdir(dir)).sort()).toEqual([data, '..data', 'a'].sort());
  });

  const bad: Array<[string, string]> = [
    ['../escape', "'..' segment"],
    ['/etc/passwd', 'relative path'],
    ['a//b', 'empty segments'],
    ['..data', "starting with '..'"],
    ['x/./y', "'.' segment"],
    ['', 'must not be empty'],
    ['n'.repeat(256), 'longer than 255'],
  ];
  it.each(bad)('refuses the whole payload for path %j (%s)', async (path, message) => {
    await expect(writeAtomically(dir, [file('ok', '1'), file(path, 'x')])).rejects.toMatchObject({ kind: 'invalid-argument', message: expect.stringContaining(message) });
    expect(await readdir(dir)).toEqual([]);
  });

  it('refuses a file that would sit inside another file', async () => {
    await expect(writeAtomically(dir, [file('a', '1'), file('a/b', '2')])).rejects.toMatchObject({ kind: 'invalid-argument' });
  });

  it('refuses a target that is not on the expected filesystem (podvault\'s tmpfs), writing nothing', async () => {
    const dev = (await lstat(dir, { bigint: true })).dev;
    await expect(writeAtomically(dir, [file('a', '1')], { device: dev + 1n })).rejects.toMatchObject({ kind: 'failed-precondition', message: expect.stringContaining("not podvault's tmpfs") });
    expect(await readdir(dir)).toEqual([]);
    expect(await writeAtomically(dir, [file('a', '1')], { device: dev })).toBe(true);
  });

  it('calls beforeChange once before the first change, and not at all when nothing changed', async () => {
    let calls = 0;
    const beforeChange = async (): Promise<void> => void (calls += 1);
    await writeAtomically(dir, [file('a', '1')], { beforeChange });
    expect(calls).toBe(1);
    await writeAtomically(dir, [file('a', '1')], { beforeChange });
    expect(calls).toBe(1);
  });

  describe('a layout it did not write is refused before anything changes', () => {
    let outside: string;
    beforeEach(async () => {
      outside = await mkdtemp('/dev/shm/podvault-writer-outside-');
      await writeFile(join(outside, 'canary'), 'keep');
    });
    afterEach(async () => {
      await rm(outside, { recursive: true, force: true });
    });

    const tamper: Array<[string, string, () => Promise<void>]> = [
      ['..data re-pointed outside', '"..data"', async () => {
        await symlink(outside, join(dir, '..x'));
        await rename(join(dir, '..x'), join(dir, '..data'));
      }],
      ['..data replaced by a directory', '"..data"', async () => {
        await rm(join(dir, '..data'));
        await mkdir(join(dir, '..data'));
      }],
      ['a visible link re-pointed outside', '"a"', async () => {
        await rm(join(dir, 'a'));
        await symlink(outside, join(dir, 'a'));
      }],
      ['a planted file', '"planted"', async () => writeFile(join(dir, 'planted'), 'x')],
      ['a link of the writer\'s directory form', '"..2020_01_01_00_00_00.AAAAAA"', async () => symlink(outside, join(dir, '..2020_01_01_00_00_00.AAAAAA'))],
    ];
    it.each(tamper)('%s', async (_name, entry, act) => {
      await writeAtomically(dir, [file('a', '1')]);
      await act();
      const before = (await readdir(dir)).sort();
      await expect(writeAtomically(dir, [file('a', '2'), file('b', '3')])).rejects.toMatchObject({ kind: 'failed-precondition', message: expect.stringContaining(entry) });
      expect((await readdir(dir)).sort()).toEqual(before);
      expect(await readdir(outside)).toEqual(['canary']);
    });
  });

  it('removes what an interrupted write left (a timestamped directory, ..data_tmp) on the next write', async () => {
    await writeAtomically(dir, [file('a', '1')]);
    await mkdir(join(dir, '..2026_01_01_00_00_00.Zz9Zz9'));
    await writeFile(join(dir, '..2026_01_01_00_00_00.Zz9Zz9', 'a'), 'half');
    await symlink('..2026_01_01_00_00_00.Zz9Zz9', join(dir, '..data_tmp'));
    await writeAtomically(dir, [file('a', '2')]);
    const data = await readlink(join(dir, '..data'));
    expect((await readdir(dir)).sort()).toEqual([data, '..data', 'a'].sort());
    expect(await readFile(join(dir, 'a'), 'utf8')).toBe('2');
  });

  it('a reader in another process never sees a missing, partial or mixed set during 200+ swaps', async () => {
    const names = ['one', 'two', 'nested/three'];
    const payload = (gen: number): PayloadFile[] => names.map((n) => file(n, `generation-${gen}`));
    await writeAtomically(dir, payload(0));
    // The reader does what applications do, in a tight loop:
    //  - opens each file through its visible link: that must never fail nor return a partial file;
    //  - reads a whole set from one snapshot of ..data (its resolved directory): the files must all
    //    be of one generation. A snapshot retired between resolving and reading is retried, as a
    //    reader of a kubelet projected volume does; it is counted, not an error.
    const reader = spawn(process.execPath, ['-e', `
      const fs = require('node:fs');
      const dir = ${JSON.stringify(dir)};
      const names = ${JSON.stringify(names)};
      let reads = 0, sets = 0, retired = 0; const bad = [];
      process.stdin.on('data', () => { console.log(JSON.stringify({ reads, sets, retired, bad: bad.slice(0, 5) })); process.exit(0); });
      (function loop() {
        for (let i = 0; i < 50; i++) {
          for (const n of names) {
            try {
              const text = fs.readFileSync(dir + '/' + n, 'utf8');
              if (!/^generation-\\d+$/.test(text)) bad.push('partial ' + n + ': ' + text);
              reads++;
            } catch (e) { bad.push('visible ' + n + ': ' + (e.code || e)); }
          }
          let snapshot;
          try { snapshot = fs.realpathSync(dir + '/..data'); } catch (e) { if (e.code === 'ENOENT') retired++; else bad.push('..data: ' + (e.code || e)); continue; }
          try {
            const seen = names.map((n) => fs.readFileSync(snapshot + '/' + n, 'utf8'));
            if (new Set(seen).size !== 1) bad.push('mixed ' + seen.join(','));
            sets++;
          } catch (e) { if (e.code === 'ENOENT') retired++; else bad.push('snapshot: ' + (e.code || e)); }
        }
        process.stderr.write(reads + '\\n'); // progress, so the writer keeps swapping while it reads
        setImmediate(loop);
      })();
    `], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let progress = 0;
    reader.stdout.on('data', (d: Buffer) => (out += d.toString()));
    reader.stderr.on('data', (d: Buffer) => (progress = Number(d.toString().trim().split('\n').pop()) || progress));
    // At least 200 swaps, and on until the reader has read 300 files meanwhile (a loaded machine
    // may start it late); bounded.
    let gen = 0;
    while (gen < 200 || (progress < 300 && gen < 5_000)) await writeAtomically(dir, payload(++gen));
    reader.stdin.write('stop\n');
    await new Promise((resolve) => reader.on('exit', resolve));
    const result = JSON.parse(out) as { reads: number; sets: number; retired: number; bad: string[] };
    expect(result.bad).toEqual([]);
    expect(result.reads).toBeGreaterThan(300);
    expect(result.sets).toBeGreaterThan(100);
    expect(await readFile(join(dir, 'nested/three'), 'utf8')).toBe(`generation-${gen}`);
  });
});
