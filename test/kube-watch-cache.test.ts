import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubeApiDouble } from './support/kube-api-double.js';
import type { KubeObject } from './support/kube-api-double.js';
import { isRoot, rpcError, startHarness } from './support/harness.js';
import type { Harness } from './support/harness.js';
import { KubeCaches } from '../src/kube/kube-caches.js';
import { KubeClassSource, loadKubeConfig } from '../src/kube/kube-class-source.js';
import { createLogger } from '../src/log.js';

const VALUE_A = 'watch-cache-a-Qp3';
const VALUE_B = 'watch-cache-b-Rt8';
const WATCHED = ['/apis/secrets-store.csi.x-k8s.io/v1/secretproviderclasses', '/apis/aadpodidentity.k8s.io/v1/azureidentities', '/apis/aadpodidentity.k8s.io/v1/azureidentitybindings', '/api/v1/serviceaccounts', '/api/v1/pods'];

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Until `check` holds (a watch event's or a reconnect's way to the driver), at most 10 s. */
async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await sleep(50);
  expect(check()).toBe(true);
}

function pod(name: string, uid: string): KubeObject {
  return { apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'apps', uid, labels: { aadpodidbinding: 'watched' } }, spec: { nodeName: 'test-node', serviceAccountName: 'default', containers: [{ name: 'c', image: 'x' }] } };
}

describe.skipIf(!isRoot)('Kubernetes mode reads classes and identity objects from watch-backed caches', () => {
  let api: KubeApiDouble;
  let h: Harness;
  let pods = 0;

  const spc = (name: string, objectName: string, extra: Record<string, string> = {}): KubeObject => ({
    apiVersion: 'secrets-store.csi.x-k8s.io/v1',
    kind: 'SecretProviderClass',
    metadata: { name, namespace: 'apps' },
    spec: { provider: 'azure', parameters: { ...h.vaultParameters([{ objectName }]), ...extra } },
  });
  const binding: KubeObject = { apiVersion: 'aadpodidentity.k8s.io/v1', kind: 'AzureIdentityBinding', metadata: { name: 'watched', namespace: 'apps' }, spec: { azureIdentity: 'mi', selector: 'watched' } };

  beforeAll(async () => {
    api = await new KubeApiDouble().start();
    h = await startHarness({ standalone: undefined, kubeconfig: await api.writeKubeconfig(), allowManagedIdentity: ['apps=mi-watch'] });
    h.vault.store.setSecret('watch-a', VALUE_A);
    h.vault.store.setSecret('watch-b', VALUE_B);
    h.vault.store.putClient({ clientId: 'mi-watch', managedIdentity: true, read: ['watch-*'] });
    api.put('serviceaccounts', { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default', namespace: 'apps' } });
    api.put('secretproviderclasses', spc('by-binding', 'watch-a', { usePodIdentity: 'true' }));
    api.put('secretproviderclasses', spc('by-secret-ref', 'db-user'));
    api.put('azureidentities', { apiVersion: 'aadpodidentity.k8s.io/v1', kind: 'AzureIdentity', metadata: { name: 'mi', namespace: 'apps' }, spec: { type: 0, clientID: 'mi-watch' } });
    api.put('azureidentitybindings', binding);
    await until(() => WATCHED.every((path) => api.openWatches.includes(path)));
  });
  afterAll(async () => {
    await h?.close();
    await api?.close();
  });

  /** The SecretProviderClassPodStatus the driver writes per volume: its only API traffic by design, apart from reads. */
  const isStatusWrite = (r: string): boolean => r.includes('/secretproviderclasspodstatuses');
  let statusRequests: string[] = [];

  /**
   * Publish (and unpublish) for a pod of this node (created in the API unless `create` is false);
   * the file read and the API reads made meanwhile (status writes are kept in `statusRequests`).
   */
  async function publish(className: string, options: { file?: string; create?: boolean; name?: string; uid?: string; secretRef?: boolean } = {}): Promise<{ text?: string; code?: number; details?: string; requests: string[] }> {
    pods += 1;
    const name = options.name ?? `watched-${pods}`;
    const uid = options.uid ?? `uid-watched-${pods}`;
    if (options.create !== false) {
      api.put('pods', pod(name, uid));
      await sleep(50); // the pod's watch event, as a pod is scheduled well before the kubelet publishes
    }
    const v = await h.volume({ pod: name, namespace: 'apps', uid, className, ...(options.secretRef ? {} : { secrets: {} }) });
    const before = api.requests.length;
    const made = (): string[] => {
      const all = api.requests.slice(before);
      statusRequests = all.filter(isStatusWrite);
      return all.filter((r) => !isStatusWrite(r));
    };
    try {
      await h.client.publish(v.request);
      const text = await readFile(join(v.targetPath, options.file ?? 'watch-a'), 'utf8');
      await h.client.unpublish({ volumeId: v.volumeId, targetPath: v.targetPath });
      return { text, requests: made() };
    } catch (err) {
      const e = err as { code?: number; details?: string };
      return { code: e.code ?? -1, details: e.details ?? '', requests: made() };
    }
  }

  it('after warm-up a publish makes no API request (pod identity binding, nodePublishSecretRef)', async () => {
    for (let i = 0; i < 3; i++) {
      expect(await publish('by-binding')).toEqual({ text: VALUE_A, requests: [] });
      // Writes only: the volume's status is created (one POST) and, at unpublish, read and deleted.
      expect(statusRequests.map((r) => r.split(' ')[0])).toEqual(['POST', 'GET', 'DELETE']);
      expect(await publish('by-secret-ref', { file: 'db-user', secretRef: true })).toMatchObject({ requests: [] });
    }
  });

  it('a deleted binding is refused at the next publish after its watch event', async () => {
    api.delete('azureidentitybindings', 'aadpodidentity.k8s.io/v1', 'apps', 'watched');
    await sleep(50);
    const refused = await publish('by-binding');
    expect(refused).toMatchObject({ code: status.PERMISSION_DENIED, details: 'no identity for pod apps/watched-' + pods + ': no AzureIdentityBinding in namespace apps has selector "watched"' });
    // A denial for want of a binding is confirmed by one direct LIST of the namespace (paged, bounded in bytes).
    expect(refused.requests).toEqual(['GET /apis/aadpodidentity.k8s.io/v1/namespaces/apps/azureidentitybindings?limit=500']);
    api.put('azureidentitybindings', binding);
    await sleep(50);
    expect(await publish('by-binding')).toEqual({ text: VALUE_A, requests: [] });
  });

  it('a class created after start is served, and a changed class is used as changed', async () => {
    api.put('secretproviderclasses', spc('late', 'watch-b', { usePodIdentity: 'true' }));
    await sleep(50);
    expect(await publish('late', { file: 'watch-b' })).toEqual({ text: VALUE_B, requests: [] });
    api.put('secretproviderclasses', spc('late', 'watch-a', { usePodIdentity: 'true' }));
    await sleep(50);
    expect(await publish('late', { file: 'watch-a' })).toEqual({ text: VALUE_A, requests: [] });
  });

  it('a new pod whose watch event has not arrived is read with a GET, then served from the cache', async () => {
    api.pauseWatches();
    api.put('pods', pod('brand-new', 'uid-brand-new'));
    const first = await publish('by-binding', { create: false, name: 'brand-new', uid: 'uid-brand-new' });
    api.resumeWatches();
    expect(first).toEqual({ text: VALUE_A, requests: ['GET /api/v1/namespaces/apps/pods/brand-new'] });
    await sleep(50);
    expect(await publish('by-binding', { create: false, name: 'brand-new', uid: 'uid-brand-new' })).toEqual({ text: VALUE_A, requests: [] });
  });

  it('a pod recreated under the same name is re-read, never taken for the cached one', async () => {
    api.pauseWatches();
    api.put('pods', pod('brand-new', 'uid-brand-new-2'));
    const again = await publish('by-binding', { create: false, name: 'brand-new', uid: 'uid-brand-new-2' });
    api.resumeWatches();
    expect(again).toEqual({ text: VALUE_A, requests: ['GET /api/v1/namespaces/apps/pods/brand-new'] });
  });

  it('dropped watches are re-established and the changes made meanwhile are seen', async () => {
    // A reset connection: the informer reports an error; the cache reads the API until it is back.
    api.dropWatches(true);
    api.put('secretproviderclasses', spc('by-binding', 'watch-b', { usePodIdentity: 'true' }));
    api.delete('secretproviderclasses', 'secrets-store.csi.x-k8s.io/v1', 'apps', 'late');
    await until(() => WATCHED.every((path) => api.openWatches.includes(path)));
    await sleep(50);
    expect(await publish('by-binding', { file: 'watch-b' })).toEqual({ text: VALUE_B, requests: [] });
    const gone = await publish('late');
    expect(gone).toMatchObject({ code: status.NOT_FOUND, details: 'SecretProviderClass "late" not found in namespace "apps"' });
    // "Not found" is never the cache's own answer: the API confirms it.
    expect(gone.requests).toEqual(['GET /apis/secrets-store.csi.x-k8s.io/v1/namespaces/apps/secretproviderclasses/late']);
  });

  it('a watch resumed from a compacted resourceVersion (410 Gone) lists again and sees the changes', async () => {
    const lists = (): number => api.requests.filter((r) => r.startsWith('GET /apis/secrets-store.csi.x-k8s.io/v1/secretproviderclasses?limit=')).length;
    const listed = lists();
    api.compact();
    api.dropWatches();
    api.put('secretproviderclasses', spc('by-binding', 'watch-a', { usePodIdentity: 'true' }));
    await until(() => lists() > listed && WATCHED.every((path) => api.openWatches.includes(path)));
    await sleep(50);
    expect(await publish('by-binding')).toEqual({ text: VALUE_A, requests: [] });
  });

  it('while the watches are down and the API fails, a publish is UNAVAILABLE, never NOT_FOUND', async () => {
    api.failWith = 503;
    api.dropWatches(true);
    try {
      const err = await rpcError(h.client.publish((await h.volume({ pod: 'x', namespace: 'apps', uid: 'uid-x', className: 'by-binding', secrets: {} })).request));
      expect(err.code).toBe(status.UNAVAILABLE);
    } finally {
      api.failWith = undefined;
    }
    await until(() => WATCHED.every((path) => api.openWatches.includes(path)));
  });
});

describe('the API caches stay within their byte budget', () => {
  it('objects past the budget, and classes over --max-class-size, are read from the API at use, never refused', async () => {
    const api = await new KubeApiDouble().start();
    const kubeConfig = loadKubeConfig(await api.writeKubeconfig());
    const logs: string[] = [];
    const caches = new KubeCaches({ kubeConfig, nodeName: 'test-node', maxClassBytes: 2048, budgetBytes: 4096, log: createLogger({ level: 'warn', destination: { write: (line: string) => void logs.push(line) } }) });
    try {
      const objects = `array:\n  - |\n    objectName: ${'x'.repeat(200)}\n`;
      for (let i = 0; i < 30; i++) api.put('secretproviderclasses', { apiVersion: 'secrets-store.csi.x-k8s.io/v1', kind: 'SecretProviderClass', metadata: { name: `c-${i}`, namespace: 'apps' }, spec: { provider: 'azure', parameters: { objects } } });
      api.put('secretproviderclasses', { apiVersion: 'secrets-store.csi.x-k8s.io/v1', kind: 'SecretProviderClass', metadata: { name: 'huge', namespace: 'other' }, spec: { provider: 'azure', parameters: { objects: 'y'.repeat(4096) } } });
      caches.start();
      const answers = await Promise.all(Array.from({ length: 30 }, (_, i) => caches.classes.get('apps', `c-${i}`)));
      const kept = answers.filter((a) => a.kind === 'value').length;
      expect(answers.filter((a) => a.kind === 'uncached')).toHaveLength(30 - kept);
      // A namespace holding an object not kept cannot be listed from the cache (the caller lists the API).
      expect(await caches.classes.list('apps')).toBeUndefined();
      expect(kept).toBeGreaterThan(0);
      expect(kept).toBeLessThan(30);
      expect((await caches.classes.get('other', 'huge')).kind).toBe('uncached');
      // Every class is still served: the ones not kept with a GET each.
      const source = new KubeClassSource(kubeConfig, caches.classes);
      const before = api.requests.length;
      for (let i = 0; i < 30; i++) expect((await source.get('apps', `c-${i}`)).spec.parameters.objects).toBe(objects);
      expect((await source.get('other', 'huge')).spec.parameters.objects).toHaveLength(4096);
      expect(api.requests.slice(before).filter((r) => r.startsWith('GET /apis/secrets-store.csi.x-k8s.io/v1/namespaces/'))).toHaveLength(30 - kept + 1);
      expect(logs.filter((l) => l.includes('API cache budget spent'))).toHaveLength(1);
    } finally {
      await caches.stop();
      await api.close();
    }
  });
});
