import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CustomObjectsApi, makeInformer } from '@kubernetes/client-node';
import { loadKubeConfig } from '../src/kube/kube-class-source.js';
import { KubeApiDouble } from './support/kube-api-double.js';
import { isRoot, objectsParameter, rpcError, startHarness } from './support/harness.js';
import type { Harness } from './support/harness.js';

describe('SecretProviderClass from the Kubernetes API (real @kubernetes/client-node against an API double)', () => {
  let api: KubeApiDouble;
  let h: Harness;
  let kubeconfig: string;

  beforeAll(async () => {
    api = await new KubeApiDouble().start();
    kubeconfig = await api.writeKubeconfig();
    h = await startHarness({ standalone: undefined, kubeconfig });
  });
  afterAll(async () => {
    await h?.close();
    await api?.close();
  });

  const spc = (name: string, namespace: string, parameters: Record<string, string>) => ({
    apiVersion: 'secrets-store.csi.x-k8s.io/v1',
    kind: 'SecretProviderClass',
    metadata: { name, namespace },
    spec: { provider: 'azure', parameters, secretObjects: [{ secretName: 'ignored', type: 'Opaque', data: [] }] },
  });

  it.skipIf(!isRoot)('publishes a class read from the API, in the pod\'s namespace', async () => {
    api.put('secretproviderclasses', spc('app', 'default', h.vaultParameters([{ objectName: 'db-user' }])));
    const v = await h.volume({ className: 'app' });
    await h.client.publish(v.request);
    expect(await readFile(join(v.targetPath, 'db-user'), 'utf8')).toMatch(/^app/);
    await h.client.unpublish({ volumeId: v.volumeId, targetPath: v.targetPath });
  });

  it('NOT_FOUND with name and namespace for a class missing from the pod\'s namespace', async () => {
    api.put('secretproviderclasses', spc('elsewhere', 'team-b', h.vaultParameters([{ objectName: 'db-user' }])));
    const v = await h.volume({ className: 'elsewhere' });
    const err = await rpcError(h.client.publish(v.request));
    expect(err.code).toBe(status.NOT_FOUND);
    expect(err.details).toBe('SecretProviderClass "elsewhere" not found in namespace "default"');
  });

  it('INVALID_ARGUMENT for a malformed class object', async () => {
    api.put('secretproviderclasses', { apiVersion: 'secrets-store.csi.x-k8s.io/v1', kind: 'SecretProviderClass', metadata: { name: 'broken', namespace: 'default' }, spec: { parameters: { objects: objectsParameter([{ objectName: 'x' }]) } } });
    const v = await h.volume({ className: 'broken' });
    const err = await rpcError(h.client.publish(v.request));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toMatch(/SecretProviderClass default\/broken is malformed: spec\.provider/);
  });

  it('UNAVAILABLE (retried by the kubelet) while the API server fails and the watches are down', async () => {
    api.failWith = 503;
    api.dropWatches();
    try {
      const v = await h.volume({ className: 'app' });
      const err = await rpcError(h.client.publish(v.request));
      expect(err.code).toBe(status.UNAVAILABLE);
      expect(err.details).toMatch(/from the Kubernetes API \(HTTP 503\)/);
    } finally {
      api.failWith = undefined;
    }
  });

  it('the API double speaks LIST and WATCH as client-node\'s informer expects them', async () => {
    const kc = loadKubeConfig(kubeconfig);
    const custom = kc.makeApiClient(CustomObjectsApi);
    const path = '/apis/secrets-store.csi.x-k8s.io/v1/namespaces/watched/secretproviderclasses';
    const informer = makeInformer(kc, path, () => custom.listNamespacedCustomObject({ group: 'secrets-store.csi.x-k8s.io', version: 'v1', namespace: 'watched', plural: 'secretproviderclasses' }) as never);
    const seen: string[] = [];
    informer.on('add', (o: { metadata?: { name?: string } }) => seen.push(`add ${o.metadata?.name ?? ''}`));
    informer.on('update', (o: { metadata?: { name?: string } }) => seen.push(`update ${o.metadata?.name ?? ''}`));
    api.put('secretproviderclasses', spc('listed', 'watched', {}));
    await informer.start();
    api.put('secretproviderclasses', spc('watched-later', 'watched', {}));
    api.put('secretproviderclasses', spc('listed', 'watched', { changed: 'yes' }));
    for (let i = 0; i < 50 && seen.length < 3; i++) await new Promise((r) => setTimeout(r, 20));
    await informer.stop();
    expect(seen).toEqual(['add listed', 'add watched-later', 'update listed']);
  });
});
