import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubeApiDouble } from './support/kube-api-double.js';
import { KubeCaches, MAX_RECORD_BYTES } from '../src/kube/kube-caches.js';
import { KubeClassSource, loadKubeConfig } from '../src/kube/kube-class-source.js';
import { KubeIdentityObjects } from '../src/kube/kube-identity-objects.js';
import { MAX_LIST_PAGE_BYTES } from '../src/kube/bounded-list.js';
import { createLogger } from '../src/log.js';
import { isRoot, startHarness } from './support/harness.js';
import type { Harness } from './support/harness.js';
import type { KubeConfig } from '@kubernetes/client-node';

/** ~700 KiB per object: 40 of them are 28 MiB, far more than a socket buffers, in one page of 500. */
const FILLER = 'f'.repeat(700 * 1024);
const FLOOD = 40;

/**
 * A tenant fills their own namespace with objects as large as the API server stores. A LIST page
 * counts objects, not bytes: read whole, one page of them would be the driver's whole memory limit
 * (256 MiB) on every node, at start and at each re-list.
 */
describe('a tenant namespace of huge objects', () => {
  let api: KubeApiDouble;
  let kubeConfig: KubeConfig;
  beforeAll(async () => {
    api = await new KubeApiDouble().start();
    kubeConfig = loadKubeConfig(await api.writeKubeconfig());
    for (let i = 0; i < FLOOD; i++) {
      api.put('secretproviderclasses', { apiVersion: 'secrets-store.csi.x-k8s.io/v1', kind: 'SecretProviderClass', metadata: { name: `big-${i}`, namespace: 'flood' }, spec: { provider: 'azure', parameters: { objects: FILLER } } });
      api.put('azureidentitybindings', { apiVersion: 'aadpodidentity.k8s.io/v1', kind: 'AzureIdentityBinding', metadata: { name: `big-${i}`, namespace: 'flood', annotations: { filler: FILLER } }, spec: { azureIdentity: 'mi', selector: `s-${i}` } });
      api.put('pods', { apiVersion: 'v1', kind: 'Pod', metadata: { name: `big-${i}`, namespace: 'flood', uid: `uid-big-${i}`, annotations: { filler: FILLER } }, spec: { nodeName: 'test-node' } });
    }
    api.put('secretproviderclasses', { apiVersion: 'secrets-store.csi.x-k8s.io/v1', kind: 'SecretProviderClass', metadata: { name: 'app', namespace: 'apps' }, spec: { provider: 'azure', parameters: { objects: 'array: []' } } });
  });
  afterAll(async () => {
    await api?.close();
  });

  const isList = (request: string): boolean => request.startsWith('GET ') && request.includes('limit=') && !request.includes('watch=');

  /**
   * Since request `from`: LISTs were made, and every LIST answer over the byte bound that the
   * double sent in full (a socket buffers some MiB of an answer its reader dropped) was dropped by
   * the driver: its next request of that collection asks for the same page with a smaller limit.
   */
  function expectPagesWithinBound(from: number, minLists: number): void {
    const requests = api.requests.slice(from).filter(isList);
    expect(requests.length).toBeGreaterThanOrEqual(minLists);
    const seen = new Set(requests);
    const over = api.responses.filter((r) => seen.has(r.request) && r.bytes > MAX_LIST_PAGE_BYTES);
    for (const big of over) {
      const url = new URL(big.request.slice(4), 'http://double');
      const at = requests.indexOf(big.request);
      const next = requests.slice(at + 1).map((r) => new URL(r.slice(4), 'http://double')).find((u) => u.pathname === url.pathname);
      expect({ request: big.request, continue: next?.searchParams.get('continue') ?? null }).toEqual({ request: big.request, continue: url.searchParams.get('continue') });
      expect(Number(next?.searchParams.get('limit'))).toBeLessThan(Number(url.searchParams.get('limit')));
    }
  }

  it('the caches read every LIST page within the byte bound, go live and still cache the other namespaces\' objects', async () => {
    const from = api.requests.length;
    const caches = new KubeCaches({ kubeConfig, nodeName: 'test-node', maxClassBytes: 64 * 1024, log: createLogger({ level: 'error' }) });
    try {
      caches.start();
      expect(await caches.classes.get('apps', 'app')).toMatchObject({ kind: 'value' });
      expect(await caches.bindings.get('flood', 'big-3')).toMatchObject({ kind: 'value', value: { spec: { selector: 's-3' } } });
      expect(await caches.pods.get('flood', `big-${FLOOD - 1}`)).toMatchObject({ kind: 'value', value: { metadata: { uid: `uid-big-${FLOOD - 1}` } } });
      expectPagesWithinBound(from, 5);
      // The tenant's classes (over --max-class-size, never cached) are still served, with a GET each.
      expect((await new KubeClassSource(kubeConfig, caches.classes).get('flood', 'big-7')).spec.parameters.objects).toBe(FILLER);
    } finally {
      await caches.stop();
    }
  });

  it('the direct LISTs of a publish (bindings to confirm a denial, the node\'s pods by uid) are paged within the bound and keep only what they need', async () => {
    const objects = new KubeIdentityObjects(kubeConfig);
    const from = api.requests.length;
    const { bindings, malformed } = await objects.listBindings('flood', { direct: true });
    expect(malformed).toEqual([]);
    expect(bindings.map((b) => b.spec.selector).sort()).toEqual(Array.from({ length: FLOOD }, (_, i) => `s-${i}`).sort());
    // Cut to what pod identity reads as each page arrives: no filler is held.
    expect(JSON.stringify(bindings).length).toBeLessThan(64 * 1024);
    expect((await objects.findPodByUid(`uid-big-${FLOOD - 1}`, 'test-node'))?.metadata.name).toBe(`big-${FLOOD - 1}`);
    expect(await objects.findPodByUid('uid-nobody', 'test-node')).toBeUndefined();
    expectPagesWithinBound(from, 3);
  });
});

/**
 * A tenant makes a few of their objects huge (a long annotation of a key the driver keeps, or of
 * any other key): the cache budget is shared by all tenants, so without a cap per record these few
 * objects spent it, and every other tenant's later objects were read from the API at each use.
 */
describe('a tenant\'s few huge identity objects', () => {
  it('are not kept (a service account is read at use, a binding is malformed), so the shared budget still holds other tenants\' objects', async () => {
    const api = await new KubeApiDouble().start();
    const kubeConfig = loadKubeConfig(await api.writeKubeconfig());
    const caches = new KubeCaches({ kubeConfig, nodeName: 'test-node', maxClassBytes: 64 * 1024, budgetBytes: 512 * 1024, log: createLogger({ level: 'error' }) });
    const huge = 'x'.repeat(100 * 1024);
    try {
      for (let i = 0; i < 6; i++) {
        api.put('serviceaccounts', { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: `sa-${i}`, namespace: 'flood', annotations: { 'azure.workload.identity/client-id': huge, 'azure.workload.identity/junk': huge } } });
        api.put('azureidentitybindings', { apiVersion: 'aadpodidentity.k8s.io/v1', kind: 'AzureIdentityBinding', metadata: { name: `b-${i}`, namespace: 'flood', annotations: { 'podvault.dev/allowed-objects': huge, 'podvault.dev/junk': huge } }, spec: { azureIdentity: 'mi', selector: 'x' } });
      }
      caches.start();
      expect((await caches.serviceAccounts.get('flood', 'sa-0')).kind).toBe('uncached');
      // Objects of other tenants created afterwards are still kept.
      api.put('serviceaccounts', { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'web', namespace: 'apps', annotations: { 'azure.workload.identity/client-id': 'c-1', 'kubectl.kubernetes.io/last-applied-configuration': huge } } });
      api.put('azureidentitybindings', { apiVersion: 'aadpodidentity.k8s.io/v1', kind: 'AzureIdentityBinding', metadata: { name: 'web', namespace: 'apps', annotations: { 'podvault.dev/allowed-objects': 'kv/*', 'podvault.dev/junk': huge } }, spec: { azureIdentity: 'mi', selector: 'web' } });
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(await caches.serviceAccounts.get('apps', 'web')).toEqual({ kind: 'value', value: { metadata: { name: 'web', namespace: 'apps', annotations: { 'azure.workload.identity/client-id': 'c-1' } } } });
      expect(await caches.bindings.get('apps', 'web')).toEqual({ kind: 'value', value: { metadata: { name: 'web', namespace: 'apps', annotations: { 'podvault.dev/allowed-objects': 'kv/*' } }, spec: { azureIdentity: 'mi', selector: 'web' } } });
      // The huge service accounts still work: read with a GET at use.
      const objects = new KubeIdentityObjects(kubeConfig, caches);
      expect((await objects.getServiceAccount('flood', 'sa-1'))?.metadata.annotations?.['azure.workload.identity/client-id']).toBe(huge);
      // A binding too big to keep is malformed, from the cache as from the API: one such binding
      // must not make every publish list the namespace's (or the cluster's) bindings from the API.
      const listed = await objects.listBindings(undefined);
      expect(listed.bindings.map((b) => b.metadata.name)).toEqual(['web']);
      expect(listed.malformed.map((m) => m.error.message)).toContain(`AzureIdentityBinding flood/b-0 is malformed: its spec and annotations podvault.dev/allowed-service-accounts and podvault.dev/allowed-objects are over ${MAX_RECORD_BYTES} bytes`);
      expect((await objects.listBindings('flood', { direct: true })).malformed).toHaveLength(6);
    } finally {
      await caches.stop();
      await api.close();
    }
  });
});

/**
 * The first LIST can take minutes (a big cluster; a tenant's flood of large objects read a page at
 * a time). Lookups wait for it at most `syncWaitMs` in all, never that long each: a publish makes
 * five lookups one after another, and every publish on the node meanwhile would wait them all.
 */
describe('a first LIST that does not finish', () => {
  it('holds lookups for the sync wait once, counted from the start; later lookups read the API at once', async () => {
    const api = await new KubeApiDouble().start();
    const kubeConfig = loadKubeConfig(await api.writeKubeconfig());
    api.put('serviceaccounts', { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'web', namespace: 'apps', annotations: { 'azure.workload.identity/client-id': 'c-1' } } });
    api.stallLists = true;
    const caches = new KubeCaches({ kubeConfig, nodeName: 'test-node', maxClassBytes: 64 * 1024, syncWaitMs: 1500, log: createLogger({ level: 'error' }) });
    const objects = new KubeIdentityObjects(kubeConfig, caches);
    try {
      caches.start();
      const first = Date.now();
      expect((await objects.getServiceAccount('apps', 'web'))?.metadata.annotations).toEqual({ 'azure.workload.identity/client-id': 'c-1' });
      expect(Date.now() - first).toBeGreaterThanOrEqual(1400);
      // Every cache is past its wait now: each lookup is a direct read, without another wait.
      const later = Date.now();
      for (let i = 0; i < 3; i++) {
        expect((await caches.classes.get('apps', 'x')).kind).toBe('unknown');
        expect(await objects.getServiceAccount('apps', 'web')).toBeDefined();
        expect((await objects.listBindings('apps')).bindings).toEqual([]);
      }
      expect(Date.now() - later).toBeLessThan(1000);
      api.releaseLists();
      for (let i = 0; i < 100 && (await caches.serviceAccounts.get('apps', 'web')).kind !== 'value'; i++) await new Promise((resolve) => setTimeout(resolve, 50));
      expect((await caches.serviceAccounts.get('apps', 'web')).kind).toBe('value');
    } finally {
      await caches.stop();
      await api.close();
    }
  });
});

/**
 * A tenant who may write SecretProviderClassPodStatuses in their namespace creates the one a pod
 * of that namespace will get, owned by another pod and saying something else, to make the driver
 * keep the lie, write into another object, or delete the wrong one.
 */
describe.skipIf(!isRoot)('a SecretProviderClassPodStatus made before the driver writes it', () => {
  const SPC = 'secrets-store.csi.x-k8s.io/v1';
  const PLURAL = 'secretproviderclasspodstatuses';
  let api: KubeApiDouble;
  let h: Harness;
  beforeAll(async () => {
    api = await new KubeApiDouble().start();
    h = await startHarness({ standalone: undefined, kubeconfig: await api.writeKubeconfig() });
    api.put('secretproviderclasses', { apiVersion: SPC, kind: 'SecretProviderClass', metadata: { name: 'app', namespace: 'default' }, spec: { provider: 'azure', parameters: h.vaultParameters([{ objectName: 'db-user' }]) } });
  });
  afterAll(async () => {
    await h?.close();
    await api?.close();
  });

  it('is replaced whole by the truth (owner, node, objects); the unpublish deletes only that name, and a status the tenant re-pointed is left to garbage collection', async () => {
    const v = await h.volume({ pod: 'victim' });
    const uid = v.request.volumeContext?.['csi.storage.k8s.io/pod.uid'];
    const lie = { podName: 'victim', secretProviderClassName: 'app', mounted: true, targetPath: v.targetPath, objects: [{ id: 'secret/db-user', version: 'forged' }] };
    api.put(PLURAL, { apiVersion: SPC, kind: 'SecretProviderClassPodStatus', metadata: { name: 'victim-default-app', namespace: 'default', labels: { 'internal.secrets-store.csi.k8s.io/node-name': 'other-node' }, ownerReferences: [{ apiVersion: 'v1', kind: 'Pod', name: 'other', uid: 'uid-other' }] }, status: lie });
    api.put(PLURAL, { apiVersion: SPC, kind: 'SecretProviderClassPodStatus', metadata: { name: 'bystander', namespace: 'default' }, status: { ...lie, podName: 'bystander' } });
    await h.client.publish(v.request);
    const written = api.get(PLURAL, SPC, 'default', 'victim-default-app');
    expect(written?.metadata).toMatchObject({ labels: { 'internal.secrets-store.csi.k8s.io/node-name': 'test-node' }, ownerReferences: [{ apiVersion: 'v1', kind: 'Pod', name: 'victim', uid }] });
    expect((written?.metadata.ownerReferences as unknown[]).length).toBe(1);
    expect(written?.status).toEqual({ ...lie, objects: [{ id: 'secret/db-user', version: h.vault.store.get('secrets', 'db-user')?.version }] });
    // The tenant now points the status at another target: the unpublish no longer deletes it.
    api.put(PLURAL, { ...written!, status: { ...lie, targetPath: '/elsewhere' } });
    await h.client.unpublish({ volumeId: v.volumeId, targetPath: v.targetPath });
    expect(api.get(PLURAL, SPC, 'default', 'victim-default-app')).toBeDefined();
    expect(api.get(PLURAL, SPC, 'default', 'bystander')).toBeDefined();
    expect(api.requests.filter((r) => r.startsWith('DELETE ') || r.startsWith('PUT ')).every((r) => r.includes('/victim-default-app'))).toBe(true);
  });
});

describe('a malformed class with thousands of bad parameters', () => {
  it('is kept as its error cut to 1,024 characters, not as big as the class', async () => {
    const api = await new KubeApiDouble().start();
    const kubeConfig = loadKubeConfig(await api.writeKubeconfig());
    const caches = new KubeCaches({ kubeConfig, nodeName: 'test-node', maxClassBytes: 64 * 1024, log: createLogger({ level: 'error' }) });
    try {
      const parameters = Object.fromEntries(Array.from({ length: 3000 }, (_, i) => [`bad-parameter-key-${i}`, i]));
      api.put('secretproviderclasses', { apiVersion: 'secrets-store.csi.x-k8s.io/v1', kind: 'SecretProviderClass', metadata: { name: 'bad', namespace: 'flood' }, spec: { provider: 'azure', parameters } });
      caches.start();
      const answer = await caches.classes.get('flood', 'bad');
      expect(answer.kind).toBe('error');
      const message = answer.kind === 'error' ? answer.error.message : '';
      expect(message).toMatch(/^SecretProviderClass flood\/bad is malformed: spec\.parameters\.bad-parameter-key-0: /);
      expect(message.length).toBeLessThan(1100);
    } finally {
      await caches.stop();
      await api.close();
    }
  });
});
