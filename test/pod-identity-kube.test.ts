import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubeApiDouble } from './support/kube-api-double.js';
import { isRoot, rpcError, startHarness } from './support/harness.js';
import type { Harness } from './support/harness.js';

const VALUE = 'kube-mode-value-Zx1';
const SP_SECRET = 'kube-mode-sp-secret-Vv4';

describe.skipIf(!isRoot)('pod identity read from the Kubernetes API (client-node against the API double)', () => {
  let api: KubeApiDouble;
  let h: Harness;

  beforeAll(async () => {
    api = await new KubeApiDouble().start();
    h = await startHarness({ standalone: undefined, kubeconfig: await api.writeKubeconfig() });
    h.vault.store.setSecret('kube-a', VALUE);
    h.vault.store.putClient({ clientId: 'kube-sp', clientSecret: SP_SECRET, managedIdentity: false, read: ['kube-*'] });
    api.put('secretproviderclasses', { apiVersion: 'secrets-store.csi.x-k8s.io/v1', kind: 'SecretProviderClass', metadata: { name: 'kube', namespace: 'apps' }, spec: { provider: 'azure', parameters: { ...h.vaultParameters([{ objectName: 'kube-a' }]), usePodIdentity: 'true' } } });
    api.put('secrets', { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'kube-sp', namespace: 'apps' }, data: { clientSecret: Buffer.from(SP_SECRET).toString('base64') } });
    api.put('azureidentities', { apiVersion: 'aadpodidentity.k8s.io/v1', kind: 'AzureIdentity', metadata: { name: 'kube-id', namespace: 'apps' }, spec: { type: 1, tenantID: h.vault.tenantId, clientID: 'kube-sp', clientPassword: { name: 'kube-sp', namespace: 'apps' } } });
    api.put('azureidentitybindings', { apiVersion: 'aadpodidentity.k8s.io/v1', kind: 'AzureIdentityBinding', metadata: { name: 'kube-binding', namespace: 'apps' }, spec: { azureIdentity: 'kube-id', selector: 'kube-app' } });
    api.put('pods', { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'api-0', namespace: 'apps', uid: 'uid-api-0', labels: { aadpodidbinding: 'kube-app' } }, spec: { serviceAccountName: 'default', containers: [{ name: 'c', image: 'x' }] } });
  });
  afterAll(async () => {
    await h?.close();
    await api?.close();
  });

  const volume = () => h.volume({ pod: 'api-0', namespace: 'apps', uid: 'uid-api-0', className: 'kube', secrets: {} });

  it('reads the pod, its binding, identity and secret from the API and mounts as that identity', async () => {
    const v = await volume();
    await h.client.publish(v.request);
    expect(await readFile(join(v.targetPath, 'kube-a'), 'utf8')).toBe(VALUE);
    await h.client.unpublish({ volumeId: v.volumeId, targetPath: v.targetPath });
    // Pods, bindings and identities come from watches; the identity's Secret is read at each use.
    expect(api.openWatches).toEqual(expect.arrayContaining(['/api/v1/pods', '/apis/aadpodidentity.k8s.io/v1/azureidentitybindings', '/apis/aadpodidentity.k8s.io/v1/azureidentities']));
    expect(api.requests).toContain('GET /api/v1/namespaces/apps/secrets/kube-sp');
    expect(h.logs.join('')).not.toContain(SP_SECRET);
  });

  it('a deleted binding takes effect at the next publish', async () => {
    api.delete('azureidentitybindings', 'aadpodidentity.k8s.io/v1', 'apps', 'kube-binding');
    await new Promise((resolve) => setTimeout(resolve, 50)); // the watch event's way to the driver
    const err = await rpcError(h.client.publish((await volume()).request));
    expect(err.code).toBe(status.PERMISSION_DENIED);
    expect(err.details).toBe('no identity for pod apps/api-0: no AzureIdentityBinding in namespace apps has selector "kube-app"');
  });
});
