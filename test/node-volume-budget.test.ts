import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDriverConfig } from '../src/config/driver-config.js';
import { NodeVolumeBudget } from '../src/driver/node-volume-budget.js';
import { isRoot, rpcError, startHarness } from './support/harness.js';
import type { Harness } from './support/harness.js';

/**
 * tmpfs pages are charged to the driver's memory cgroup. Each volume within --tmpfs-size, many
 * volumes together (64 pods with 4 MiB each) would still push the driver past its DaemonSet limit
 * and keep it crash-looping: --max-node-volume-size bounds them all.
 */
describe('NodeVolumeBudget', () => {
  it('reserves, replaces, refuses past the limit naming the flag, and gives back', () => {
    const budget = new NodeVolumeBudget(100);
    budget.reserve('/a', 60);
    expect(() => budget.reserve('/b', 50)).toThrow(/hold 60 bytes; this volume's 50 would pass --max-node-volume-size \(100 bytes\)/);
    const undo = budget.reserve('/a', 90); // a rotation replaces what the volume held
    expect(budget.usedBytes).toBe(90);
    undo(); // the rotation failed: back to the old size
    expect(budget.usedBytes).toBe(60);
    budget.release('/a');
    budget.reserve('/b', 100);
    expect(budget.usedBytes).toBe(100);
  });

  it('must hold at least one full volume', () => {
    expect(() => buildDriverConfig({ standalone: '/tmp/x', tmpfsSize: '4Mi', maxNodeVolumeSize: '1Mi' }, {})).toThrow(/--max-node-volume-size must be at least --tmpfs-size/);
    expect(buildDriverConfig({ standalone: '/tmp/x' }, {}).maxNodeVolumeBytes).toBe(64 * 1024 * 1024);
  });
});

describe.skipIf(!isRoot)('--max-node-volume-size through the driver', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ tmpfsSize: '64Ki', maxNodeVolumeSize: '100Ki', rotationInterval: '0s' }); // every republish refetches
    h.vault.store.setSecret('db-user', 'u'.repeat(40_000)); // 10 pages of the node's 25
    await h.writeClass('big', h.vaultParameters([{ objectName: 'db-user' }]));
  });
  afterAll(async () => {
    await h?.close();
  });

  it('refuses the volume that would pass it with RESOURCE_EXHAUSTED naming the flag, nothing mounted; serves it once another volume goes', async () => {
    const a = await h.volume({ className: 'big' });
    const b = await h.volume({ className: 'big' });
    const c = await h.volume({ className: 'big' });
    await h.client.publish(a.request);
    await h.client.publish(b.request);
    const err = await rpcError(h.client.publish(c.request));
    expect(err.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(err.details).toContain('--max-node-volume-size (102400 bytes)');
    expect(err.details).not.toContain('uuuu');
    await expect(readFile(join(c.targetPath, 'db-user'))).rejects.toMatchObject({ code: 'ENOENT' });
    // A republish (rotation) of a mounted volume replaces its share instead of adding to it: with
    // a's and b's 20 pages held, an added share (30 of 25) would fail the rotation and keep the old value.
    h.vault.store.setSecret('db-user', 'v'.repeat(40_000));
    await h.client.publish(b.request);
    expect(await readFile(join(b.targetPath, 'db-user'), 'utf8')).toBe('v'.repeat(40_000));
    await h.client.unpublish({ volumeId: a.volumeId, targetPath: a.targetPath });
    await h.client.publish(c.request); // the kubelet's retry, once space was freed
    expect((await readFile(join(c.targetPath, 'db-user'), 'utf8')).length).toBe(40_000);
    await h.client.unpublish({ volumeId: b.volumeId, targetPath: b.targetPath });
    await h.client.unpublish({ volumeId: c.volumeId, targetPath: c.targetPath });
  });

  it('an unpublish whose rmdir is refused still gives the unmounted volume\'s share back', async () => {
    const a = await h.volume({ className: 'big' });
    const b = await h.volume({ className: 'big' });
    const c = await h.volume({ className: 'big' });
    await mkdir(a.targetPath);
    await writeFile(join(a.targetPath, 'not-ours'), 'x'); // beneath the tmpfs: rmdir will refuse
    await h.client.publish(a.request);
    await h.client.publish(b.request);
    const refused = await rpcError(h.client.unpublish({ volumeId: a.volumeId, targetPath: a.targetPath }));
    expect(refused.code).toBe(status.FAILED_PRECONDITION);
    expect(await readFile(join(a.targetPath, 'not-ours'), 'utf8')).toBe('x'); // left in place
    await h.client.publish(c.request); // fits: a's files are gone with its tmpfs
    await h.client.unpublish({ volumeId: b.volumeId, targetPath: b.targetPath });
    await h.client.unpublish({ volumeId: c.volumeId, targetPath: c.targetPath });
  });
});
