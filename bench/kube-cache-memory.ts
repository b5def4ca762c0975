/**
 * `node dist/bench/kube-cache-memory.js`: what the Kubernetes-mode API caches cost in memory. The
 * API double (this process) holds BENCH_OBJECTS (5000) each of SecretProviderClasses,
 * AzureIdentities, AzureIdentityBindings and ServiceAccounts, plus 100 pods of this node and 5000
 * of other nodes; a child process loads client-node, measures RSS and heap, starts the caches,
 * waits for their first LIST and measures again (after a GC).
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { KubeApiDouble } from '../src/devvault/kube-api-double.js';

const OBJECTS = Number(process.env.BENCH_OBJECTS ?? 5000);

const mib = (bytes: number): number => Math.round((bytes / 1024 / 1024) * 10) / 10;

async function child(kubeconfig: string): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc ?? ((): void => undefined);
  const [{ loadKubeConfig }, { KubeCaches }, { createLogger }] = await Promise.all([import('../src/kube/kube-class-source.js'), import('../src/kube/kube-caches.js'), import('../src/log.js')]);
  gc();
  const before = process.memoryUsage();
  const caches = new KubeCaches({ kubeConfig: loadKubeConfig(kubeconfig), nodeName: 'bench-node', maxClassBytes: 64 * 1024, log: createLogger({ level: 'warn' }), syncWaitMs: 120_000 });
  const started = Date.now();
  caches.start();
  await Promise.all([caches.classes.get('ns-0', 'x'), caches.identities.get('ns-0', 'x'), caches.bindings.get('ns-0', 'x'), caches.serviceAccounts.get('ns-0', 'x'), caches.pods.get('ns-0', 'x')]);
  const syncMs = Date.now() - started;
  gc();
  const after = process.memoryUsage();
  const bindings = (await caches.bindings.list())?.length ?? 0;
  const pods = (await caches.pods.list())?.length ?? 0;
  await caches.stop();
  process.stdout.write(`${JSON.stringify({ objectsPerKind: OBJECTS, cachedBindings: bindings, cachedPods: pods, syncMs, rssBeforeMiB: mib(before.rss), rssAfterMiB: mib(after.rss), rssCostMiB: mib(after.rss - before.rss), heapCostMiB: mib(after.heapUsed - before.heapUsed) })}\n`);
}

async function main(): Promise<void> {
  const api = await new KubeApiDouble().start();
  for (let i = 0; i < OBJECTS; i++) {
    const namespace = `ns-${i % 200}`;
    const labels = { app: `app-${i}`, 'app.kubernetes.io/part-of': 'bench' };
    api.put('secretproviderclasses', { apiVersion: 'secrets-store.csi.x-k8s.io/v1', kind: 'SecretProviderClass', metadata: { name: `spc-${i}`, namespace, labels }, spec: { provider: 'azure', parameters: { keyvaultName: 'bench-vault', tenantId: '00000000-0000-0000-0000-000000000000', usePodIdentity: 'true', objects: `array:\n  - |\n    objectName: secret-${i}\n    objectType: secret\n  - |\n    objectName: cert-${i}\n    objectType: cert\n` } } });
    api.put('azureidentities', { apiVersion: 'aadpodidentity.k8s.io/v1', kind: 'AzureIdentity', metadata: { name: `id-${i}`, namespace, labels }, spec: { type: 0, clientID: `client-${i}`, resourceID: `/subscriptions/x/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-${i}` } });
    api.put('azureidentitybindings', { apiVersion: 'aadpodidentity.k8s.io/v1', kind: 'AzureIdentityBinding', metadata: { name: `binding-${i}`, namespace, labels, annotations: { 'kubectl.kubernetes.io/last-applied-configuration': 'x'.repeat(400) } }, spec: { azureIdentity: `id-${i}`, selector: `app-${i}` } });
    api.put('serviceaccounts', { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: `sa-${i}`, namespace, labels, annotations: { 'azure.workload.identity/client-id': `client-${i}` } } });
    api.put('pods', { apiVersion: 'v1', kind: 'Pod', metadata: { name: `pod-${i}`, namespace, uid: `uid-${i}`, labels: { ...labels, aadpodidbinding: `app-${i}` } }, spec: { nodeName: i < 100 ? 'bench-node' : `node-${i % 1000}`, serviceAccountName: `sa-${i}`, containers: [{ name: 'c', image: 'x' }] } });
  }
  const kubeconfig = await api.writeKubeconfig();
  const self = fileURLToPath(import.meta.url);
  await new Promise<void>((resolve, reject) => {
    const proc = spawn(process.execPath, ['--expose-gc', self, '--child', kubeconfig], { stdio: ['ignore', 'inherit', 'inherit'] });
    proc.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`child exited ${code}`))));
  });
  await api.close();
}

if (process.argv[2] === '--child') await child(process.argv[3] ?? '');
else await main();
