import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubeApiDouble } from './support/kube-api-double.js';
import type { KubeObject } from './support/kube-api-double.js';
import { isRoot, SECRET_VALUES, startHarness } from './support/harness.js';
import type { Harness } from './support/harness.js';
import { POD_STATUS_TIMEOUT_MS } from '../src/kube/kube-pod-status-writer.js';

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));
const SPC = 'secrets-store.csi.x-k8s.io/v1';
const PLURAL = 'secretproviderclasspodstatuses';

describe.skipIf(!isRoot)('SecretProviderClassPodStatus: which versions a pod has (Kubernetes mode, through the API double)', () => {
  let api: KubeApiDouble;
  let h: Harness;
  beforeAll(async () => {
    api = await new KubeApiDouble().start();
    h = await startHarness({ standalone: undefined, kubeconfig: await api.writeKubeconfig(), rotationInterval: '1s', metricsAddr: '127.0.0.1:0' });
    api.put('secretproviderclasses', { apiVersion: SPC, kind: 'SecretProviderClass', metadata: { name: 'app', namespace: 'default' }, spec: { provider: 'azure', parameters: h.vaultParameters([{ objectName: 'db-user' }, { objectName: 'db-password' }]) } });
  });
  afterAll(async () => {
    await h?.close();
    await api?.close();
  });

  const statusOf = (pod: string): KubeObject | undefined => api.get(PLURAL, SPC, 'default', `${pod}-default-app`);
  const versionsIn = (o: KubeObject | undefined) => (o?.status as { objects?: Array<{ id: string; version: string }> } | undefined)?.objects;

  it('after a publish: named <pod>-<namespace>-<class>, owned by the pod, labelled with the node, ids and versions and never a value', async () => {
    const v = await h.volume({ pod: 'status-0' });
    await h.client.publish(v.request);
    const o = statusOf('status-0');
    expect(o).toMatchObject({
      apiVersion: SPC,
      kind: 'SecretProviderClassPodStatus',
      metadata: {
        name: 'status-0-default-app',
        namespace: 'default',
        labels: { 'internal.secrets-store.csi.k8s.io/node-name': 'test-node' },
        ownerReferences: [{ apiVersion: 'v1', kind: 'Pod', name: 'status-0', uid: v.request.volumeContext?.['csi.storage.k8s.io/pod.uid'] }],
      },
      status: { podName: 'status-0', secretProviderClassName: 'app', mounted: true, targetPath: v.targetPath },
    });
    expect(versionsIn(o)).toEqual([
      { id: 'secret/db-password', version: h.vault.store.get('secrets', 'db-password')?.version },
      { id: 'secret/db-user', version: h.vault.store.get('secrets', 'db-user')?.version },
    ]);
    expect(JSON.stringify(o)).not.toContain(SECRET_VALUES.dbPassword);
    await h.client.unpublish({ volumeId: v.volumeId, targetPath: v.targetPath });
  });

  it('a rotation to a new secret version updates it; a republish that changes nothing writes nothing', async () => {
    const v = await h.volume({ pod: 'status-1' });
    await h.client.publish(v.request);
    const first = statusOf('status-1');
    await h.client.publish(v.request); // inside the interval
    expect(statusOf('status-1')?.metadata.resourceVersion).toBe(first?.metadata.resourceVersion);

    const version = h.vault.store.setSecret('db-user', 'app-v3');
    await wait(1100);
    await h.client.publish(v.request);
    expect(await readFile(join(v.targetPath, 'db-user'), 'utf8')).toBe('app-v3');
    expect(versionsIn(statusOf('status-1'))).toContainEqual({ id: 'secret/db-user', version });
    await h.client.unpublish({ volumeId: v.volumeId, targetPath: v.targetPath });
  });

  it('an unpublish removes it', async () => {
    const v = await h.volume({ pod: 'status-2' });
    await h.client.publish(v.request);
    expect(statusOf('status-2')).toBeDefined();
    await h.client.unpublish({ volumeId: v.volumeId, targetPath: v.targetPath });
    expect(statusOf('status-2')).toBeUndefined();
    expect(api.requests).toContain(`DELETE /apis/secrets-store.csi.x-k8s.io/v1/namespaces/default/${PLURAL}/status-2-default-app`);
  });

  it('two volumes of one pod with one class: unpublishing the first leaves the status the second wrote', async () => {
    const uid = '00000000-0000-4000-8000-0000000005a1';
    const a = await h.volume({ pod: 'status-twice', uid, volumeName: 'first' });
    const b = await h.volume({ pod: 'status-twice', uid, volumeName: 'second' });
    await h.client.publish(a.request);
    await h.client.publish(b.request);
    expect((statusOf('status-twice')?.status as { targetPath?: string }).targetPath).toBe(b.targetPath);
    await h.client.unpublish({ volumeId: a.volumeId, targetPath: a.targetPath });
    expect((statusOf('status-twice')?.status as { targetPath?: string }).targetPath).toBe(b.targetPath);
    await h.client.unpublish({ volumeId: b.volumeId, targetPath: b.targetPath });
    expect(statusOf('status-twice')).toBeUndefined();
  });

  it.each([403, 500])('an API that refuses the write (%i) does not fail the publish; it is logged, counted and written at the next republish', async (code) => {
    const v = await h.volume({ pod: `status-refused-${code}` });
    api.failWritesWith = code;
    try {
      await h.client.publish(v.request);
      expect(await readFile(join(v.targetPath, 'db-password'), 'utf8')).toBe(SECRET_VALUES.dbPassword);
      expect(statusOf(`status-refused-${code}`)).toBeUndefined();
      expect(h.logs.join('')).toContain('could not write the SecretProviderClassPodStatus');
      const metrics = await (await fetch(`${h.driver.metricsUrl!}/metrics`)).text();
      expect(metrics).toMatch(/podvault_pod_status_writes_total\{result="failed"\} [1-9]/);
    } finally {
      delete api.failWritesWith;
    }
    await h.client.publish(v.request); // a republish inside the interval retries the pending write
    expect(versionsIn(statusOf(`status-refused-${code}`))).toHaveLength(2);
    await h.client.unpublish({ volumeId: v.volumeId, targetPath: v.targetPath });
  });

  it('an API that never answers holds the publish for the writer\'s bound only, and the status is written later', async () => {
    const v = await h.volume({ pod: 'status-stalled' });
    api.stallWrites = true;
    try {
      await h.client.publish(v.request); // answered OK after at most POD_STATUS_TIMEOUT_MS of waiting
      expect(await readFile(join(v.targetPath, 'db-password'), 'utf8')).toBe(SECRET_VALUES.dbPassword);
      expect(h.logs.join('')).toContain(`no answer within ${POD_STATUS_TIMEOUT_MS} ms`);
    } finally {
      delete api.stallWrites;
    }
    await h.client.publish(v.request);
    expect(statusOf('status-stalled')).toBeDefined();
    await h.client.unpublish({ volumeId: v.volumeId, targetPath: v.targetPath });
  });
});
