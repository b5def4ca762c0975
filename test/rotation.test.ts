import { readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findMount } from '../src/driver/mountinfo.js';
import { TIMER_ROTATIONS_AT_ONCE } from '../src/driver/node-service.js';
import { createLogger } from '../src/log.js';
import { KubeApiDouble } from './support/kube-api-double.js';
import { isRoot, startHarness } from './support/harness.js';
import type { Harness } from './support/harness.js';

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!isRoot)('rotation: secrets follow Key Vault without restarting pods', () => {
  let api: KubeApiDouble;
  let h: Harness;
  beforeAll(async () => {
    api = await new KubeApiDouble().start();
    h = await startHarness({ standalone: undefined, kubeconfig: await api.writeKubeconfig(), rotationInterval: '1s', metricsAddr: '127.0.0.1:0' });
    api.put('secretproviderclasses', { apiVersion: 'secrets-store.csi.x-k8s.io/v1', kind: 'SecretProviderClass', metadata: { name: 'app', namespace: 'default' }, spec: { provider: 'azure', parameters: h.vaultParameters([{ objectName: 'db-user' }, { objectName: 'db-password' }]) } });
  });
  afterAll(async () => {
    await h?.close();
    await api?.close();
  });

  it('a republish inside the interval answers OK without a vault call; after it, a new version is swapped in', async () => {
    const v = await h.volume();
    await h.client.publish(v.request);
    const before = h.vault.requests.secret ?? 0;
    await h.client.publish(v.request);
    expect(h.vault.requests.secret ?? 0).toBe(before);

    h.vault.store.setSecret('db-user', 'app-v2');
    await wait(1100);
    const data = await readlink(join(v.targetPath, '..data'));
    await h.client.publish(v.request);
    expect(await readFile(join(v.targetPath, 'db-user'), 'utf8')).toBe('app-v2');
    expect(await readlink(join(v.targetPath, '..data'))).not.toBe(data);
    await h.client.unpublish({ volumeId: v.volumeId, targetPath: v.targetPath });
  });

  it('a failed refetch keeps the old files, answers OK, and raises an event and a metric', async () => {
    const v = await h.volume({ pod: 'rot-fail' });
    await h.client.publish(v.request);
    const mounted = await readFile(join(v.targetPath, 'db-user'), 'utf8');
    h.vault.injectFault({ path: /^\/secrets\/db-user\//, status: 403, times: 100 });
    try {
      await wait(1100);
      await h.client.publish(v.request); // OK even though the vault refused
      expect(await readFile(join(v.targetPath, 'db-user'), 'utf8')).toBe(mounted);
      await wait(200);
      const events = api.created.filter((e) => (e as { reason?: string }).reason === 'RotationFailed');
      expect(events.length).toBeGreaterThan(0);
      expect(events[0]).toMatchObject({ type: 'Warning', involvedObject: { kind: 'Pod', name: 'rot-fail', namespace: 'default' } });
      expect(JSON.stringify(events)).not.toContain(mounted);
      const metrics = await (await fetch(`${h.driver.metricsUrl!}/metrics`)).text();
      expect(metrics).toMatch(/podvault_rotations_total\{result="failed"\} [1-9]/);
    } finally {
      h.vault.clearFaults();
    }
    await h.client.unpublish({ volumeId: v.volumeId, targetPath: v.targetPath });
  });

  it('rotates on its own timer a volume the kubelet does not republish', async () => {
    const v = await h.volume({ pod: 'rot-timer' });
    await h.client.publish(v.request);
    h.vault.store.setSecret('db-password', 'rotated-by-timer');
    for (let i = 0; i < 40 && (await readFile(join(v.targetPath, 'db-password'), 'utf8')) !== 'rotated-by-timer'; i++) await wait(100);
    expect(await readFile(join(v.targetPath, 'db-password'), 'utf8')).toBe('rotated-by-timer');
    await h.client.unpublish({ volumeId: v.volumeId, targetPath: v.targetPath });
  });

  it('serves metrics and probes on --metrics-addr', async () => {
    const base = h.driver.metricsUrl!;
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect(await (await fetch(`${base}/readyz`)).text()).toBe('ready\n');
    const text = await (await fetch(`${base}/metrics`)).text();
    for (const name of ['podvault_publishes_total{result="ok"}', 'podvault_unpublishes_total{result="ok"}', 'podvault_publish_duration_seconds_bucket', 'podvault_vault_requests_total{status="200"}', 'podvault_mounted_volumes', 'podvault_process_resident_memory_bytes']) {
      expect(text).toContain(name);
    }
  });

  it('forgets a volume unmounted behind its back instead of mounting it again', async () => {
    const v = await h.volume({ pod: 'rot-gone' });
    await h.client.publish(v.request);
    await new Promise((resolve, reject) => execFile('umount', [v.targetPath], (err) => (err ? reject(err) : resolve(undefined))));
    for (let i = 0; i < 40 && h.driver.node.volumes.get(v.volumeId); i++) await wait(100);
    expect(h.driver.node.volumes.get(v.volumeId)).toBeUndefined();
    expect(await findMount(v.targetPath)).toBeUndefined();
    await h.client.unpublish({ volumeId: v.volumeId, targetPath: v.targetPath });
  });
});

describe.skipIf(!isRoot)('the rotation timer: one rotation per volume at a time, a bounded number at once', () => {
  let h: Harness;
  const count = TIMER_ROTATIONS_AT_ONCE + 2;
  const names = Array.from({ length: count }, (_, i) => `db-burst-${i}`);
  beforeAll(async () => {
    h = await startHarness({ rotationInterval: '1s' });
    // One object per volume: identical fetches in flight would be shared and hide the count.
    for (const name of names) {
      h.vault.store.setSecret(name, 'v1');
      await h.writeClass(name, h.vaultParameters([{ objectName: name }]));
    }
  });
  afterAll(async () => {
    await h?.close();
  });

  it('against a slow vault, ticks neither queue a second fetch of a pending volume nor exceed the bound', async () => {
    const volumes = await Promise.all(names.map((name) => h.volume({ className: name })));
    for (const v of volumes) await h.client.publish(v.request);
    const burst = (r: { path: string; outcome: string }) => r.outcome === 'delayed' && r.path.startsWith('/secrets/db-burst-');
    // The first `count` refetches hang 3 s each; ticks (every second, plus ours) keep coming meanwhile.
    h.vault.injectFault({ path: /^\/secrets\/db-burst-/, delayMs: 3000, times: count });
    await wait(1100); // every volume is now older than the interval
    const log = createLogger({ level: 'silent' });
    const ticks = Array.from({ length: 5 }, () => h.driver.node.rotateStale(log));
    for (let i = 0; i < 100 && h.vault.vaultLog.filter(burst).length < TIMER_ROTATIONS_AT_ONCE; i++) await wait(20);
    const inFlight = h.vault.vaultLog.filter(burst);
    expect(inFlight).toHaveLength(TIMER_ROTATIONS_AT_ONCE);
    expect(new Set(inFlight.map((r) => r.path.split('/')[2])).size).toBe(TIMER_ROTATIONS_AT_ONCE);
    await Promise.all(ticks);

    // Then the rest of the pass: every volume refetched once while slow, none twice.
    for (let i = 0; i < 200 && h.vault.vaultLog.filter(burst).length < count; i++) await wait(50);
    const delayed = h.vault.vaultLog.filter(burst).map((r) => r.path.split('/')[2]);
    expect(delayed.sort()).toEqual([...names].sort());
    for (const v of volumes) await h.client.unpublish({ volumeId: v.volumeId, targetPath: v.targetPath });
  });
});
