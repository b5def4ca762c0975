import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CustomResourceDefinition } from 'kubernetes-models/apiextensions.k8s.io/v1';
import { DaemonSet, Deployment } from 'kubernetes-models/apps/v1';
import { ClusterRole, ClusterRoleBinding, Role, RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import { CSIDriver } from 'kubernetes-models/storage.k8s.io/v1';
import { ConfigMap, Namespace, Pod, Secret, ServiceAccount } from 'kubernetes-models/v1';
import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { driverCommand } from '../src/cli/driver-command.js';
import { kmsPluginCommand } from '../src/cli/kms-plugin-command.js';
import { buildKmsConfig } from '../src/kms/kms-config.js';
import type { KmsFlags } from '../src/kms/kms-config.js';
import { describeListenAddress } from '../src/kms/listen-address.js';
import { buildDriverConfig, DRIVER_MALLOC_ARENA_MAX, DRIVER_NODE_OPTIONS } from '../src/config/driver-config.js';
import { parseSeed } from '../src/devvault/seed.js';
import type { DriverFlags } from '../src/config/driver-config.js';
import { DEFAULT_FLEX_ENDPOINT } from '../src/flexvolume/shim.js';
import { azureIdentityBindingSchema, azureIdentitySchema } from '../src/identity/crds.js';
import { WORKLOAD_IDENTITY_AUDIENCE } from '../src/identity/identity-resolver.js';
import { IDENTITY_BINDING_AUDIENCE } from '../src/identity/token-proxy-config.js';
import { SPC_GROUP, SPC_VERSION, secretProviderClassSchema } from '../src/kube/secret-provider-class.js';
import { SPCPS_KIND, SPCPS_PLURAL, podStatusBody } from '../src/kube/pod-status.js';
import { packageRoot } from '../src/package-info.js';
import { parseAzureParameters } from '../src/providers/azure/parameters.js';

type Doc = { apiVersion: string; kind: string; metadata: { name: string }; [k: string]: unknown };

async function loadYaml(dir: string): Promise<Array<{ file: string; doc: Doc }>> {
  const out: Array<{ file: string; doc: Doc }> = [];
  for (const entry of await readdir(dir, { recursive: true })) {
    if (!/\.ya?ml$/.test(entry)) continue;
    for (const d of parseAllDocuments(await readFile(join(dir, entry), 'utf8'))) {
      expect(d.errors, entry).toEqual([]);
      out.push({ file: entry, doc: d.toJS() as Doc });
    }
  }
  return out;
}

/** The Kubernetes schema validator of each built-in kind the manifests use. */
const builtIn: Record<string, new (o: never) => { validate(): void }> = {
  'apps/v1/DaemonSet': DaemonSet,
  'storage.k8s.io/v1/CSIDriver': CSIDriver,
  'apiextensions.k8s.io/v1/CustomResourceDefinition': CustomResourceDefinition,
  'rbac.authorization.k8s.io/v1/ClusterRole': ClusterRole,
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': ClusterRoleBinding,
  'rbac.authorization.k8s.io/v1/Role': Role,
  'rbac.authorization.k8s.io/v1/RoleBinding': RoleBinding,
  'apps/v1/Deployment': Deployment,
  'v1/ServiceAccount': ServiceAccount,
  'v1/Namespace': Namespace,
  'v1/Secret': Secret,
  'v1/Pod': Pod,
  'v1/ConfigMap': ConfigMap,
};

describe('deploy/: manifests that apply and are wired to the code', async () => {
  const docs = [...(await loadYaml(join(packageRoot, 'deploy'))), ...(await loadYaml(join(packageRoot, 'examples')))];
  const find = (kind: string, name?: string): Doc => {
    const found = docs.find((d) => d.doc.kind === kind && (!name || d.doc.metadata.name === name));
    expect(found, `${kind} ${name ?? ''}`).toBeDefined();
    return found!.doc;
  };

  it('every document validates against its Kubernetes schema (built-in kinds) or podvault\'s own (CRs)', () => {
    for (const { file, doc } of docs) {
      if (doc.kind === 'Kustomization') continue;
      if (file === 'dev-vault.yaml') {
        parseSeed(JSON.stringify(doc), file); // dev-vault's seed, not a Kubernetes object
        continue;
      }
      const validator = builtIn[`${doc.apiVersion}/${doc.kind}`];
      if (validator) {
        expect(() => new validator(doc as never).validate(), `${file}: ${doc.kind} ${doc.metadata.name}`).not.toThrow();
      } else if (doc.kind === 'SecretProviderClass') {
        const spc = secretProviderClassSchema.parse(doc);
        expect(() => parseAzureParameters(spc.spec.parameters), file).not.toThrow();
      } else if (doc.kind === 'AzureIdentity') azureIdentitySchema.parse(doc);
      else if (doc.kind === 'AzureIdentityBinding') azureIdentityBindingSchema.parse(doc);
      else if (doc.kind === 'EncryptionConfiguration') expect(doc.apiVersion, file).toBe('apiserver.config.k8s.io/v1');
      else throw new Error(`${file}: no validator for ${doc.apiVersion} ${doc.kind}`);
    }
  });

  it('the kustomization lists every file of deploy/daemonset', async () => {
    const kustomization = docs.find((d) => d.file === join('daemonset', 'kustomization.yaml'))?.doc as unknown as { resources: string[] };
    const files = (await readdir(join(packageRoot, 'deploy', 'daemonset'))).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml');
    expect([...kustomization.resources].sort()).toEqual(files.sort());
  });

  const ds = () => find('DaemonSet', 'podvault') as unknown as {
    spec: { template: { spec: { containers: Array<{ name: string; args?: string[]; command?: string[]; env?: Array<{ name: string; value?: string }>; volumeMounts: Array<{ name: string; mountPath: string; mountPropagation?: string }>; readinessProbe?: { httpGet: { port: string } }; livenessProbe?: { httpGet: { port: string } }; ports?: Array<{ name: string; containerPort: number }>; securityContext?: { privileged?: boolean } }>; volumes: Array<{ name: string; hostPath: { path: string } }> } } };
  };
  const container = (name: string) => ds().spec.template.spec.containers.find((c) => c.name === name)!;
  const hostPath = (volume: string) => ds().spec.template.spec.volumes.find((v) => v.name === volume)!.hostPath.path;

  it('the driver container\'s args are flags of `podvault driver` that build a valid configuration', () => {
    const driver = container('podvault');
    expect(driver.command).toEqual(['node', '/opt/podvault/bin/podvault.js', 'driver']);
    const options = driverCommand().options;
    const flags: Record<string, unknown> = {};
    for (const arg of driver.args ?? []) {
      const [name, value] = arg.split(/=(.*)/s);
      const option = options.find((o) => o.long === name);
      expect(option, `${name} is a flag of podvault driver`).toBeDefined();
      flags[option!.attributeName()] = value === undefined ? true : value.replace('$(NODE_NAME)', 'node-1');
    }
    const config = buildDriverConfig(flags as DriverFlags, {});
    expect(config).toMatchObject({ endpoint: 'unix:///csi/csi.sock', kubeletDir: '/var/lib/kubelet', requirePodToken: true, stateDir: '/var/run/podvault', classSource: { kind: 'kubernetes' } });
    expect(driver.securityContext?.privileged).toBe(true);
    expect(driver.env?.find((e) => e.name === 'NODE_OPTIONS')?.value).toBe(DRIVER_NODE_OPTIONS);
    expect(driver.env?.find((e) => e.name === 'MALLOC_ARENA_MAX')?.value).toBe(DRIVER_MALLOC_ARENA_MAX);
  });

  it('socket paths, mounts and probe ports line up between the driver, the sidecars, the kubelet and FlexVolume', () => {
    const driver = container('podvault');
    const registrar = container('node-driver-registrar');
    const liveness = container('liveness-probe');
    expect(driver.volumeMounts).toContainEqual({ name: 'plugin-dir', mountPath: '/csi' });
    expect(registrar.args).toContain('--csi-address=/csi/csi.sock');
    expect(liveness.args).toContain('--csi-address=/csi/csi.sock');
    const registration = registrar.args!.find((a) => a.startsWith('--kubelet-registration-path='))!.split('=')[1];
    expect(registration).toBe(`${hostPath('plugin-dir')}/csi.sock`);
    expect(DEFAULT_FLEX_ENDPOINT).toBe(`unix://${registration}`);
    expect(driver.volumeMounts).toContainEqual({ name: 'pods-dir', mountPath: '/var/lib/kubelet/pods', mountPropagation: 'Bidirectional' });
    expect(hostPath('pods-dir')).toBe('/var/lib/kubelet/pods');
    expect(driver.volumeMounts.find((m) => m.name === 'state-dir')?.mountPath).toBe('/var/run/podvault');
    const metricsPort = driver.ports!.find((p) => p.name === driver.readinessProbe!.httpGet.port)!.containerPort;
    expect(driver.args).toContain(`--metrics-addr=:${metricsPort}`);
    const healthzPort = driver.ports!.find((p) => p.name === driver.livenessProbe!.httpGet.port)!.containerPort;
    expect(liveness.args).toContain(`--http-endpoint=:${healthzPort}`);
  });

  it('the CSIDriver object asks for what the driver needs', () => {
    const csiDriver = find('CSIDriver') as unknown as { metadata: { name: string }; spec: { podInfoOnMount: boolean; volumeLifecycleModes: string[]; requiresRepublish: boolean; tokenRequests: Array<{ audience: string }> } };
    const config = buildDriverConfig({ nodeId: 'n' }, {});
    expect(csiDriver.metadata.name).toBe(config.driverName);
    // fsGroupPolicy File with the driver's VOLUME_MOUNT_GROUP: the pod's fsGroup reaches the driver.
    expect(csiDriver.spec).toMatchObject({ podInfoOnMount: true, volumeLifecycleModes: ['Ephemeral'], requiresRepublish: true, fsGroupPolicy: 'File' });
    expect(csiDriver.spec.tokenRequests.map((t) => t.audience).sort()).toEqual([config.podTokenAudience, WORKLOAD_IDENTITY_AUDIENCE, IDENTITY_BINDING_AUDIENCE].sort());
  });

  it('RBAC grants exactly the API calls the driver makes, and nothing that writes Secrets', () => {
    const role = find('ClusterRole', 'podvault') as unknown as { rules: Array<{ apiGroups: string[]; resources: string[]; verbs: string[] }> };
    const granted = new Set(role.rules.flatMap((r) => r.apiGroups.flatMap((g) => r.resources.flatMap((res) => r.verbs.map((v) => `${g}/${res}:${v}`)))));
    // What src/kube/*.ts call through @kubernetes/client-node.
    // The watch-backed caches of src/kube/kube-caches.ts list and watch; Secrets are only read (get).
    const watched = ['/pods', '/serviceaccounts', '/configmaps', 'secrets-store.csi.x-k8s.io/secretproviderclasses', 'aadpodidentity.k8s.io/azureidentities', 'aadpodidentity.k8s.io/azureidentitybindings'].flatMap((r) => [`${r}:list`, `${r}:watch`]);
    const used = [...watched, '/pods:get', '/serviceaccounts:get', '/configmaps:get', '/secrets:get', '/events:create', 'secrets-store.csi.x-k8s.io/secretproviderclasses:get', ...['get', 'create', 'update', 'delete'].map((v) => `secrets-store.csi.x-k8s.io/secretproviderclasspodstatuses:${v}`), 'aadpodidentity.k8s.io/azureidentities:get'];
    expect([...granted].sort()).toEqual(used.sort());
    // deploy/version-watch has its own (test/version-watch-manifests.test.ts).
    const bindings = docs.filter((d) => d.doc.kind === 'ClusterRoleBinding' && !d.file.startsWith('version-watch')).map((d) => d.doc as unknown as { roleRef: { name: string } });
    expect(bindings.map((b) => b.roleRef.name).sort()).toEqual(['podvault', 'system:service-account-issuer-discovery']);
  });

  it('the SecretProviderClassPodStatus CRD is upstream\'s names and holds every field the driver writes', () => {
    const crd = find('CustomResourceDefinition', `${SPCPS_PLURAL}.${SPC_GROUP}`) as unknown as { spec: { group: string; names: { kind: string; plural: string }; versions: Array<{ name: string; schema: { openAPIV3Schema: { properties: { status: { properties: Record<string, { items?: { properties: Record<string, unknown> } }> } } } } }> } };
    expect(crd.spec).toMatchObject({ group: SPC_GROUP, names: { kind: SPCPS_KIND, plural: SPCPS_PLURAL } });
    const status = crd.spec.versions.find((v) => v.name === SPC_VERSION)!.schema.openAPIV3Schema.properties.status.properties;
    const body = podStatusBody({ pod: { namespace: 'ns', name: 'p', uid: 'u', serviceAccount: 'sa' }, className: 'c', targetPath: '/t', objects: [{ id: 'secret/a', version: '1' }] }, 'node-1') as { status: Record<string, unknown> };
    // A structural schema prunes unknown fields: each one written must be declared.
    expect(Object.keys(status).sort()).toEqual(Object.keys(body.status).sort());
    expect(Object.keys(status.objects!.items!.properties).sort()).toEqual(['id', 'version']);
  });

  it('ships a Dockerfile that builds the same entry point', async () => {
    const dockerfile = await readFile(join(packageRoot, 'Dockerfile'), 'utf8');
    expect(dockerfile).toContain('/opt/podvault/bin/podvault.js');
    expect(dockerfile).toMatch(/FROM node:20/);
  });

  describe('deploy/kms: the static pod and the EncryptionConfiguration', () => {
    type KmsPod = { spec: { hostNetwork: boolean; containers: Array<{ command: string[]; args: string[]; volumeMounts: Array<{ name: string; mountPath: string }>; livenessProbe: { httpGet: { path: string; port: number } } }>; volumes: Array<{ name: string; hostPath: { path: string } }> } };
    const pod = () => find('Pod', 'podvault-kms') as unknown as KmsPod;
    const encryption = () =>
      find('EncryptionConfiguration') as unknown as { resources: Array<{ resources: string[]; providers: Array<{ kms?: { apiVersion: string; name: string; endpoint: string; timeout: string }; identity?: object }> }> };

    it('the plugin\'s args are flags of `podvault kms-plugin` that build a valid configuration; no secret on argv', async () => {
      const c = pod().spec.containers[0]!;
      expect(c.command).toEqual(['node', '/opt/podvault/bin/podvault.js', 'kms-plugin']);
      const options = kmsPluginCommand().options;
      const flags: Record<string, unknown> = { logLevel: 'info' };
      for (const arg of c.args) {
        const [name, value] = arg.split(/=(.*)/s);
        const option = options.find((o) => o.long === name);
        expect(option, `${name} is a flag of podvault kms-plugin`).toBeDefined();
        flags[option!.attributeName()] = (value ?? '').replace('<vault>', 'kv1').replace('<key>', 'etcd-kek');
        expect(name).not.toMatch(/secret|password/i);
      }
      // The node's azure.json is not on this machine: stand in a managed identity for the file.
      delete flags.configFilePath;
      const config = await buildKmsConfig({ ...(flags as unknown as KmsFlags), useManagedIdentity: true }, {});
      expect(config.key).toEqual({ vaultUrl: 'https://kv1.vault.azure.net', name: 'etcd-kek' });
      expect(c.livenessProbe.httpGet).toMatchObject({ path: '/readyz', port: Number(config.metricsAddr!.split(':')[1]) });
    });

    it('kube-apiserver\'s endpoint is the plugin\'s socket, on a hostPath the pod mounts; kms v2 first, identity last', async () => {
      const c = pod().spec.containers[0]!;
      const listen = c.args.find((a) => a.startsWith('--listen='))!.slice('--listen='.length);
      const config = await buildKmsConfig({ logLevel: 'info', listen, keyId: 'https://kv1.vault.azure.net/keys/k', useManagedIdentity: true }, {});
      const [entry] = encryption().resources;
      expect(entry!.resources).toEqual(['secrets']);
      const providers = entry!.providers;
      expect(providers[0]!.kms).toMatchObject({ apiVersion: 'v2', endpoint: describeListenAddress(config.listen), timeout: '3s' });
      expect(providers[providers.length - 1]).toEqual({ identity: {} });
      const socketDir = config.listen.kind === 'path' ? config.listen.path.replace(/\/[^/]+$/, '') : '';
      const mount = c.volumeMounts.find((m) => m.mountPath === socketDir)!;
      expect(pod().spec.volumes.find((v) => v.name === mount.name)!.hostPath.path).toBe(socketDir);
      expect(pod().spec.hostNetwork).toBe(true);
    });
  });
});
