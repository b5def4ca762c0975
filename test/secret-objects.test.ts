import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CsiClient } from '../src/driver/client.js';
import { startDriver } from '../src/driver/server.js';
import { createLogger } from '../src/log.js';
import { KubeApiDouble } from './support/kube-api-double.js';
import { isRoot, startHarness } from './support/harness.js';
import type { Harness } from './support/harness.js';

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));
type Event = { reason?: string; type?: string; message?: string; involvedObject?: { name?: string } };

describe.skipIf(!isRoot)('spec.secretObjects: ignored on purpose, the pod is told once per volume', () => {
  let api: KubeApiDouble;
  let h: Harness;
  let stateDir: string;
  beforeAll(async () => {
    api = await new KubeApiDouble().start();
    stateDir = await mkdtemp('/dev/shm/podvault-state-');
    h = await startHarness({ standalone: undefined, kubeconfig: await api.writeKubeconfig(), rotationInterval: '1s', stateDir });
    const secretObjects = [{ secretName: 'db', type: 'Opaque', data: [{ objectName: 'db-password', key: 'password' }] }];
    api.put('secretproviderclasses', { apiVersion: 'secrets-store.csi.x-k8s.io/v1', kind: 'SecretProviderClass', metadata: { name: 'synced', namespace: 'default' }, spec: { provider: 'azure', parameters: h.vaultParameters([{ objectName: 'db-password' }]), secretObjects } });
    api.put('secretproviderclasses', { apiVersion: 'secrets-store.csi.x-k8s.io/v1', kind: 'SecretProviderClass', metadata: { name: 'plain', namespace: 'default' }, spec: { provider: 'azure', parameters: h.vaultParameters([{ objectName: 'db-password' }]) } });
  });
  afterAll(async () => {
    await h?.close();
    await api?.close();
    await rm(stateDir, { recursive: true, force: true });
  });

  const eventsFor = (pod: string): Event[] => (api.created as Event[]).filter((e) => e.reason === 'SecretObjectsIgnored' && e.involvedObject?.name === pod);

  it('the volume still mounts; one Normal event over publish, republishes, a rotation and a driver restart', async () => {
    const v = await h.volume({ pod: 'synced-0', className: 'synced' });
    await h.client.publish(v.request);
    expect(await readFile(join(v.targetPath, 'db-password'), 'utf8')).toBeTruthy();
    await h.client.publish(v.request); // republish inside the interval
    await wait(1100);
    await h.client.publish(v.request); // republish with a refetch
    await wait(200);
    const events = eventsFor('synced-0');
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ type: 'Normal' });
    expect(events[0]!.message).toContain('spec.secretObjects is ignored');
    expect(events[0]!.message).toContain('Environment variables');
    expect(api.requests.filter((r) => /^(POST|PUT|PATCH) \/api\/v1\/namespaces\/[^/]+\/secrets/.test(r))).toEqual([]); // no Secret is written

    // A restart that takes the volume back from --state-dir does not tell the pod again.
    await h.driver.stop(1000);
    const log = createLogger({ level: 'debug', destination: { write: (line: string) => void h.logs.push(line) } });
    const next = await startDriver({ config: h.config, log });
    const client = new CsiClient(h.config.endpoint);
    try {
      await wait(1100);
      await client.publish(v.request);
      await client.unpublish({ volumeId: v.volumeId, targetPath: v.targetPath });
    } finally {
      client.close();
      await next.stop(1000);
    }
    await wait(200);
    expect(eventsFor('synced-0')).toHaveLength(1);
  });

  it('a class without secretObjects raises no such event', async () => {
    const next = await startDriver({ config: h.config, log: createLogger({ level: 'info', destination: { write: () => undefined } }) });
    const client = new CsiClient(h.config.endpoint);
    try {
      const v = await h.volume({ pod: 'plain-0', className: 'plain' });
      await client.publish(v.request);
      await client.unpublish({ volumeId: v.volumeId, targetPath: v.targetPath });
    } finally {
      client.close();
      await next.stop(1000);
    }
    await wait(200);
    expect(eventsFor('plain-0')).toHaveLength(0);
  });
});
