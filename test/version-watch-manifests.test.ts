import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { versionWatchCommand } from '../src/cli/version-watch-command.js';
import { driverCommand } from '../src/cli/driver-command.js';
import { buildDriverConfig } from '../src/config/driver-config.js';
import type { DriverFlags } from '../src/config/driver-config.js';
import { packageRoot } from '../src/package-info.js';
import { DEFAULT_LEASE_NAME, buildWatchConfig } from '../src/version-watch/watch-config.js';
import { buildVersionsStatus } from '../src/version-watch/versions-publisher.js';
import { VOV_GROUP, VOV_KIND, VOV_PLURAL, VOV_VERSION } from '../src/version-watch/versions-resource.js';

type Doc = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string }; [k: string]: unknown };
type Rule = { apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames?: string[] };

const dir = join(packageRoot, 'deploy', 'version-watch');

async function docs(): Promise<Array<{ file: string; doc: Doc }>> {
  const out: Array<{ file: string; doc: Doc }> = [];
  for (const file of await readdir(dir)) {
    for (const d of parseAllDocuments(await readFile(join(dir, file), 'utf8'))) out.push({ file, doc: d.toJS() as Doc });
  }
  return out;
}

const grants = (rules: Rule[]): string[] => rules.flatMap((r) => r.apiGroups.flatMap((g) => r.resources.flatMap((res) => r.verbs.map((v) => `${g}/${res}:${v}${r.resourceNames ? `@${r.resourceNames.join(',')}` : ''}`)))).sort();

describe('deploy/version-watch', async () => {
  const all = await docs();
  const find = (kind: string, name: string): Doc => {
    const found = all.find((d) => d.doc.kind === kind && d.doc.metadata.name === name);
    expect(found, `${kind} ${name}`).toBeDefined();
    return found!.doc;
  };

  it('the kustomization lists every file', async () => {
    const k = all.find((d) => d.file === 'kustomization.yaml')!.doc as unknown as { resources: string[] };
    expect([...k.resources].sort()).toEqual((await readdir(dir)).filter((f) => f !== 'kustomization.yaml').sort());
  });

  it('RBAC grants exactly what the watcher calls: watch classes, the one Lease, create objects and write their status', () => {
    const cluster = find('ClusterRole', 'podvault-version-watch') as unknown as { rules: Rule[] };
    expect(grants(cluster.rules)).toEqual(['secrets-store.csi.x-k8s.io/secretproviderclasses:list', 'secrets-store.csi.x-k8s.io/secretproviderclasses:watch']);
    const role = find('Role', 'podvault-version-watch') as unknown as { rules: Rule[] };
    expect(grants(role.rules)).toEqual(
      [
        'coordination.k8s.io/leases:create',
        `coordination.k8s.io/leases:get@${DEFAULT_LEASE_NAME}`,
        `coordination.k8s.io/leases:update@${DEFAULT_LEASE_NAME}`,
        `${VOV_GROUP}/${VOV_PLURAL}:create`,
        `${VOV_GROUP}/${VOV_PLURAL}:get`,
        `${VOV_GROUP}/${VOV_PLURAL}/status:update`,
      ].sort(),
    );
    // Nothing of Secrets, pods or tokens.
    expect(JSON.stringify(all.filter((d) => d.doc.kind.includes('Role')))).not.toMatch(/"secrets"|"pods"|serviceaccounts\/token/);
    const readers = find('Role', 'podvault-version-readers') as unknown as { rules: Rule[] };
    expect(grants(readers.rules)).toEqual([`${VOV_GROUP}/${VOV_PLURAL}:get`, `${VOV_GROUP}/${VOV_PLURAL}:list`, `${VOV_GROUP}/${VOV_PLURAL}:watch`]);
  });

  it('the Deployment runs two non-root replicas on a read-only root, with flags the command accepts', async () => {
    const d = find('Deployment', 'podvault-version-watch') as unknown as {
      spec: { replicas: number; template: { spec: { serviceAccountName: string; securityContext: { runAsNonRoot: boolean }; containers: Array<{ args: string[]; securityContext: { readOnlyRootFilesystem: boolean; allowPrivilegeEscalation: boolean } }> } } };
    };
    expect(d.spec.replicas).toBe(2);
    const pod = d.spec.template.spec;
    expect(pod.serviceAccountName).toBe('podvault-version-watch');
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    const container = pod.containers[0]!;
    expect(container.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false });
    const command = versionWatchCommand().exitOverride();
    command.action(() => undefined);
    await command.parseAsync(container.args, { from: 'user' });
    const config = await buildWatchConfig({ ...(command.opts() as { logLevel: string }) }, { AZURE_CLIENT_ID: 'c', AZURE_TENANT_ID: 't', AZURE_FEDERATED_TOKEN_FILE: '/var/run/secrets/azure/tokens/azure-identity-token' });
    expect(config.intervalMs).toBe(120_000);
    expect(config.identity.kind).toBe('workload-identity');
    expect(JSON.stringify(container.args)).not.toMatch(/secret/i);
  });

  it('the CRD is namespaced with a status subresource, named as the code names it', () => {
    const crd = find('CustomResourceDefinition', `${VOV_PLURAL}.${VOV_GROUP}`) as unknown as { spec: { group: string; scope: string; names: { kind: string; plural: string }; versions: Array<{ name: string; subresources?: { status?: object } }> } };
    expect(crd.spec).toMatchObject({ group: VOV_GROUP, scope: 'Namespaced', names: { kind: VOV_KIND, plural: VOV_PLURAL } });
    expect(crd.spec.versions.find((v) => v.name === VOV_VERSION)?.subresources?.status).toEqual({});
  });

  it('the CRD schema declares every status field the watcher writes (a structural schema prunes the rest)', () => {
    const crd = find('CustomResourceDefinition', `${VOV_PLURAL}.${VOV_GROUP}`) as unknown as { spec: { versions: Array<{ schema: { openAPIV3Schema: { properties: { status: { properties: Record<string, { properties?: Record<string, { additionalProperties?: { properties?: Record<string, unknown> } }> }> } } } } }> } };
    const schema = crd.spec.versions[0]!.schema.openAPIV3Schema.properties.status.properties;
    const status = buildVersionsStatus('https://v.vault.azure.net', [{ object: { vaultUrl: 'https://v.vault.azure.net', collection: 'keys', name: 'k' }, result: { version: 'a'.repeat(32) } }], { now: Date.now(), intervalMs: 120_000, writer: 'w' });
    expect(Object.keys(status).sort()).toEqual(Object.keys(schema).sort());
    expect(Object.keys(status.versions).sort()).toEqual(Object.keys(schema.versions!.properties!).sort());
    expect(Object.keys(status.versions.keys.k!).sort()).toEqual(Object.keys(schema.versions!.properties!.keys!.additionalProperties!.properties!).sort());
    expect(Object.keys(status.unavailable).sort()).toEqual(Object.keys(schema.unavailable!.properties!).sort());
  });

  it('deploy/version-watch-driver turns the watch on in the driver DaemonSet: its patch adds --version-watch to the driver container', async () => {
    const overlay = parseAllDocuments(await readFile(join(packageRoot, 'deploy', 'version-watch-driver', 'kustomization.yaml'), 'utf8'))[0]!.toJS() as { resources: string[]; patches: Array<{ target: { kind: string; name: string }; patch: string }> };
    expect(overlay.resources).toEqual(['../daemonset']);
    const [patch] = overlay.patches;
    expect(patch?.target).toEqual({ kind: 'DaemonSet', name: 'podvault' });
    const ops = parseAllDocuments(patch!.patch)[0]!.toJS() as Array<{ op: string; path: string; value: string }>;
    expect(ops).toEqual([
      { op: 'test', path: '/spec/template/spec/containers/0/name', value: 'podvault' },
      { op: 'add', path: '/spec/template/spec/containers/0/args/-', value: '--version-watch' },
    ]);
    // The patched args are flags of `podvault driver` that build a configuration with the watch on.
    const daemonSet = parseAllDocuments(await readFile(join(packageRoot, 'deploy', 'daemonset', 'daemonset.yaml'), 'utf8'))[0]!.toJS() as { spec: { template: { spec: { containers: Array<{ name: string; args: string[] }> } } } };
    const driver = daemonSet.spec.template.spec.containers[0]!;
    expect(driver.name).toBe('podvault');
    const options = driverCommand().options;
    const flags: Record<string, unknown> = {};
    for (const arg of [...driver.args, ops[1]!.value]) {
      const [name, value] = arg.split(/=(.*)/s);
      const option = options.find((o) => o.long === name);
      expect(option, `${name} is a flag of podvault driver`).toBeDefined();
      flags[option!.attributeName()] = value === undefined ? true : value.replace('$(NODE_NAME)', 'node-1');
    }
    expect(buildDriverConfig(flags as DriverFlags, {}).versionWatch).toEqual({ namespace: 'podvault' });
  });
});
