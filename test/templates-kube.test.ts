import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubeApiDouble } from './support/kube-api-double.js';
import { isRoot, rpcError, startHarness } from './support/harness.js';
import type { Harness } from './support/harness.js';

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));
const objectsYaml = (entries: readonly object[]): string => stringify({ array: entries.map((e) => stringify(e)) });

/**
 * Templates in Kubernetes mode: ConfigMaps read with client-node from the API server double (GET
 * until the watch-backed cache is live, then the cache; the watch starts at the first template
 * publish), from the pod's namespace only, and a changed ConfigMap re-rendered at rotation.
 */
describe.skipIf(!isRoot)('templates with ConfigMaps from the Kubernetes API', () => {
  let api: KubeApiDouble;
  let h: Harness;
  const putConfigMap = (namespace: string, name: string, data: Record<string, string>) => api.put('configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace }, data });
  const putClass = (namespace: string, name: string, objects: readonly object[]) =>
    api.put('secretproviderclasses', { apiVersion: 'secrets-store.csi.x-k8s.io/v1', kind: 'SecretProviderClass', metadata: { name, namespace }, spec: { provider: 'azure', parameters: { vaultUri: h.vault.url, tenantId: h.vault.tenantId, objects: objectsYaml(objects) } } });

  beforeAll(async () => {
    api = await new KubeApiDouble().start();
    h = await startHarness({ standalone: undefined, kubeconfig: await api.writeKubeconfig(), rotationInterval: '1s' });
  });
  afterAll(async () => {
    await h?.close();
    await api?.close();
  });

  it('lists no ConfigMaps until a template needs one; then renders from the API and keeps a watch', async () => {
    await wait(200);
    expect(api.requests.filter((r) => r.includes('configmaps'))).toEqual([]);
    putConfigMap('default', 'app-config', { 'app.yaml': 'db:\n  user: {{ secret "db-user" }}\n  password: "{{ secret "db-password" | yaml }}"\n' });
    putClass('default', 'kube-tmpl', [{ objectName: 'db-user', objectType: 'secret' }, { objectName: 'db-password', objectType: 'secret' }, { objectName: 'app', objectType: 'template', objectAlias: 'app.yaml', configMap: { name: 'app-config', key: 'app.yaml' } }]);
    const v = await h.volume({ className: 'kube-tmpl' });
    await h.client.publish(v.request);
    expect(await readFile(join(v.targetPath, 'app.yaml'), 'utf8')).toBe('db:\n  user: app\n  password: "pw-Zq81-never-log-me"\n');
    expect(api.requests).toContain('GET /api/v1/namespaces/default/configmaps/app-config');
    for (let i = 0; i < 50 && !api.openWatches.includes('/api/v1/configmaps'); i++) await wait(50);
    expect(api.openWatches).toContain('/api/v1/configmaps');

    // Once the watch is live the ConfigMap comes from the cache; its change reaches the next rotation.
    const gets = api.requests.filter((r) => r.startsWith('GET /api/v1/namespaces/default/configmaps/')).length;
    putConfigMap('default', 'app-config', { 'app.yaml': 'user={{ secret "db-user" }}\n' });
    await wait(1100);
    await h.client.publish(v.request);
    expect(await readFile(join(v.targetPath, 'app.yaml'), 'utf8')).toBe('user=app\n');
    expect(api.requests.filter((r) => r.startsWith('GET /api/v1/namespaces/default/configmaps/')).length).toBe(gets);

    // The pod status lists the template beside the objects: its id and a version, never a value.
    const status = api.get('secretproviderclasspodstatuses', 'secrets-store.csi.x-k8s.io/v1', 'default', `${v.request.volumeContext?.['csi.storage.k8s.io/pod.name'] ?? ''}-default-kube-tmpl`);
    const objects = (status?.status as { objects?: Array<{ id: string; version: string }> } | undefined)?.objects ?? [];
    expect(objects.map((o) => o.id).sort()).toEqual(['secret/db-password', 'secret/db-user', 'template/app']);
    expect(objects.find((o) => o.id === 'template/app')?.version).toMatch(/^[0-9a-f]{32}$/);
    expect(JSON.stringify(status)).not.toContain('pw-Zq81');

    // A ConfigMap edited into a mistake: the rotation keeps the mounted file and says why in an event.
    putConfigMap('default', 'app-config', { 'app.yaml': 'user={{ secret "db-user" | base64 }}\n' });
    await wait(1100);
    await h.client.publish(v.request);
    expect(await readFile(join(v.targetPath, 'app.yaml'), 'utf8')).toBe('user=app\n');
    await wait(200);
    const failed = api.created.filter((e) => (e as { reason?: string }).reason === 'RotationFailed').map((e) => (e as { message?: string }).message ?? '');
    expect(failed.some((m) => m.includes('template "app.yaml" (ConfigMap default/app-config key app.yaml): line 1, column 28: unknown pipe "base64"'))).toBe(true);
    await h.client.unpublish({ volumeId: v.volumeId, targetPath: v.targetPath });
  });

  it('never reads a ConfigMap of another namespace than the pod\'s', async () => {
    putConfigMap('team-b', 'only-in-b', { t: 'secret-shaped config of team b' });
    putClass('default', 'cross-ns', [{ objectName: 'tpl', objectType: 'template', configMap: { name: 'only-in-b', key: 't' } }]);
    const v = await h.volume({ className: 'cross-ns' });
    const err = await rpcError(h.client.publish(v.request));
    expect(err.code).toBe(status.NOT_FOUND);
    expect(err.details).toContain('ConfigMap "only-in-b" not found in namespace "default"');
    expect(api.requests.some((r) => r.includes('/namespaces/team-b/configmaps'))).toBe(false);
  });

  it('a ConfigMap the API refuses to the driver is a clear status naming it', async () => {
    const fresh = await startHarness({ standalone: undefined, kubeconfig: await api.writeKubeconfig(), rotationInterval: '1s' });
    api.forbid = /\/configmaps/;
    try {
      putClass('default', 'refused-cm', [{ objectName: 'tpl', objectType: 'template', configMap: { name: 'app-config', key: 'app.yaml' } }]);
      const v = await fresh.volume({ className: 'refused-cm' });
      const err = await rpcError(fresh.client.publish(v.request));
      expect(err.code).toBe(status.PERMISSION_DENIED);
      expect(err.details).toContain('ConfigMap default/app-config: the driver may not read it (HTTP 403)');
    } finally {
      api.forbid = undefined;
      await fresh.close();
    }
  });
});
