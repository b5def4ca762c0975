import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runFlexVolume } from '../src/flexvolume/shim.js';
import { findMount } from '../src/driver/mountinfo.js';
import { KubeApiDouble } from './support/kube-api-double.js';
import type { KubeObject } from './support/kube-api-double.js';
import { isRoot, startHarness } from './support/harness.js';
import type { Harness } from './support/harness.js';

const APP_VALUE = 'flex-kube-app-value-Mm3-never-log';
const VICTIM_VALUE = 'flex-kube-victim-value-Nn5-never-log';

function pod(name: string, namespace: string, uid: string, nodeName: string, label?: string): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace, uid, labels: label ? { aadpodidbinding: label } : {} },
    spec: { nodeName, serviceAccountName: 'default', containers: [{ name: 'c', image: 'x' }], volumes: [{ name: 'kv', flexVolume: { driver: 'podvault/keyvault', readOnly: true } }] },
  };
}

describe.skipIf(!isRoot)('FlexVolume in Kubernetes mode: the pod comes from the API by the mount directory\'s uid', () => {
  let api: KubeApiDouble;
  let h: Harness;

  beforeAll(async () => {
    api = await new KubeApiDouble().start();
    h = await startHarness({ standalone: undefined, kubeconfig: await api.writeKubeconfig(), requirePodToken: true });
    h.vault.store.setSecret('app-secret', APP_VALUE);
    h.vault.store.setSecret('victim-secret', VICTIM_VALUE);
    h.vault.store.putClient({ clientId: 'sp-app', clientSecret: 'sp-app-secret', managedIdentity: false, read: ['app-*'] });
    h.vault.store.putClient({ clientId: 'sp-victim', clientSecret: 'sp-victim-secret', managedIdentity: false, read: ['victim-*'] });
    for (const [ns, client, label] of [['apps', 'sp-app', 'app'], ['victim', 'sp-victim', 'victim']] as const) {
      api.put('secrets', { apiVersion: 'v1', kind: 'Secret', metadata: { name: client, namespace: ns }, data: { clientSecret: Buffer.from(`${client}-secret`).toString('base64') } });
      api.put('azureidentities', { apiVersion: 'aadpodidentity.k8s.io/v1', kind: 'AzureIdentity', metadata: { name: 'id', namespace: ns }, spec: { type: 1, tenantID: h.vault.tenantId, clientID: client, clientPassword: { name: client, namespace: ns } } });
      api.put('azureidentitybindings', { apiVersion: 'aadpodidentity.k8s.io/v1', kind: 'AzureIdentityBinding', metadata: { name: 'binding', namespace: ns }, spec: { azureIdentity: 'id', selector: label } });
    }
    api.put('pods', pod('app-0', 'apps', 'uid-app-0', 'test-node', 'app'));
    api.put('pods', pod('victim-0', 'victim', 'uid-victim-0', 'test-node', 'victim'));
    api.put('pods', pod('attacker-0', 'team-a', 'uid-attacker-0', 'test-node'));
    api.put('pods', pod('elsewhere-0', 'apps', 'uid-elsewhere-0', 'other-node', 'app'));
  });
  afterAll(async () => {
    await h?.close();
    await api?.close();
  });

  async function mount(uid: string, objectName: string, extra: Record<string, string> = {}): Promise<{ dir: string; result: Awaited<ReturnType<typeof runFlexVolume>> }> {
    const dir = join(h.kubeletDir, 'pods', uid, 'volumes', 'podvault~keyvault', 'kv');
    await mkdir(dir, { recursive: true });
    const options = {
      'kubernetes.io/fsType': '',
      'kubernetes.io/readwrite': 'ro',
      'kubernetes.io/pvOrVolumeName': 'kv',
      vaulturi: h.vault.url,
      tenantid: h.vault.tenantId,
      keyvaultobjectnames: objectName,
      usepodidentity: 'true',
      ...extra,
    };
    return { dir, result: await runFlexVolume(['mount', dir, JSON.stringify(options)], h.config.endpoint) };
  }

  it('serves a legitimate FlexVolume mount under --require-pod-token (FlexVolume carries no token)', async () => {
    const { dir, result } = await mount('uid-app-0', 'app-secret');
    expect(result).toEqual({ status: 'Success' });
    expect(await readFile(join(dir, 'app-secret'), 'utf8')).toBe(APP_VALUE);
    // The node's pods come from one LIST and a watch, both filtered to this node.
    expect(api.requests).toContain('GET /api/v1/pods?fieldSelector=spec.nodeName%3Dtest-node&limit=500');
    expect(api.openWatches).toContain('/api/v1/pods');
    expect(await runFlexVolume(['unmount', dir], h.config.endpoint)).toEqual({ status: 'Success' });
  });

  it('an attacker whose options name the victim pod (pod.uid "") is refused as itself, never mounting the victim\'s secrets', async () => {
    const { dir, result } = await mount('uid-attacker-0', 'victim-secret', {
      'kubernetes.io/pod.name': 'victim-0',
      'kubernetes.io/pod.namespace': 'victim',
      'kubernetes.io/pod.uid': '',
      'kubernetes.io/serviceAccount.name': 'default',
    });
    expect(result).toEqual({ status: 'Failure', message: 'podvault: no identity for pod team-a/attacker-0: the pod has no aadpodidbinding label' });
    expect(await findMount(dir)).toBeUndefined();
    expect(h.vault.vaultLog.some((r) => r.path.startsWith('/secrets/victim-secret'))).toBe(false);
    expect(h.logs.join('')).not.toContain(VICTIM_VALUE);
  });

  it('a pod of another node is not this node\'s caller', async () => {
    const { result } = await mount('uid-elsewhere-0', 'app-secret');
    expect(result).toEqual({ status: 'Failure', message: 'podvault: FlexVolume mount for pod uid uid-elsewhere-0: no pod with this uid runs on this node' });
  });
});
