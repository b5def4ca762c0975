import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyVersion } from '../src/devvault/key-crypto.js';
import { parseSeed } from '../src/devvault/seed.js';
import { startDevVault } from '../src/devvault/server.js';
import type { DevVault } from '../src/devvault/server.js';
import { isRoot, rpcError, startHarness } from './support/harness.js';
import type { Harness } from './support/harness.js';
import { sealAsAdmin } from './support/sealing.js';
import { publishAs, setUp, TEAM_A_VALUE } from './support/identity-fixtures.js';

const objectsYaml = (entries: readonly object[]): string => stringify({ array: entries.map((e) => stringify(e)) });
const APP = { clientid: 'sealed-app', clientsecret: 'sealed-app-secret-0001' };
const NO_UNWRAP = { clientid: 'sealed-reader', clientsecret: 'sealed-reader-secret-0001' };
const DB_URL = 'postgres://app:S3cr"et\\#1@db/app?sslmode=require';
const API_KEY = 'ak-Qm27-never-log-me';

const seal = (vault: DevVault, keyName: string, values: string[]): Promise<string[]> => sealAsAdmin(vault, keyName, values, 'sealer');

/**
 * Sealed values in templates, through the real CSI socket: `{{pv:…}}` markers of a ConfigMap
 * unwrapped with the pod's identity (Key Vault RBAC on the key decides), one unwrap per data key,
 * beside vault references; refusals name the template and the key, never a value.
 */
describe.skipIf(!isRoot)('templates: sealed values unwrapped as the pod', () => {
  let h: Harness;
  let markers: string[];
  beforeAll(async () => {
    h = await startHarness({ rotationInterval: '1s' });
    const { jwk, privateKey } = generateKeyVersion({ kty: 'RSA', size: 2048, crv: 'P-256' });
    h.vault.store.putKey('app-config', jwk, privateKey);
    h.vault.store.putClient({ clientId: APP.clientid, clientSecret: APP.clientsecret, managedIdentity: false, read: ['*'], crypto: [{ role: 'crypto-service-encryption-user', keys: ['app-config'] }] });
    h.vault.store.putClient({ clientId: NO_UNWRAP.clientid, clientSecret: NO_UNWRAP.clientsecret, managedIdentity: false, read: ['*'] });
    h.vault.store.setSecret('plain', 'hunter2');
    markers = await seal(h.vault, 'app-config', [DB_URL, API_KEY]);
  });
  afterAll(async () => {
    await h?.close();
  });

  async function mount(template: string, secrets = APP) {
    const name = `s${Math.random().toString(36).slice(2, 9)}`;
    await h.writeObjects(`${name}-cm.yaml`, [{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `${name}-cfg`, namespace: 'default' }, data: { 'app.yaml': template } }]);
    await h.writeClass(name, { vaultUri: h.vault.url, tenantId: h.vault.tenantId, objects: objectsYaml([{ objectName: 'plain', objectType: 'secret' }, { objectName: 'app', objectType: 'template', objectAlias: 'app.yaml', configMap: { name: `${name}-cfg`, key: 'app.yaml' } }]) });
    const v = await h.volume({ className: name, secrets });
    return { v, publish: () => h.client.publish(v.request), read: (f: string) => readFile(join(v.targetPath, f), 'utf8') };
  }
  const unwraps = (): number => h.vault.vaultLog.filter((r) => r.path.endsWith('/unwrapkey')).length;

  it('renders sealed values and vault references with exact bytes, one unwrap for the data key', async () => {
    const [db, api] = markers as [string, string];
    const m = await mount(`db: "${db.replace('}}', ' | yaml}}')}"\napi: ${api}\nagain: ${api}\npassword: {{ secret "plain" }}\n`);
    const before = unwraps();
    await m.publish();
    expect(await m.read('app.yaml')).toBe(`db: "postgres://app:S3cr\\"et\\\\#1@db/app?sslmode=require"\napi: ${API_KEY}\nagain: ${API_KEY}\npassword: hunter2\n`);
    expect(unwraps() - before).toBe(1);
    expect(h.logs.join('\n')).not.toContain(API_KEY);
    await h.client.unpublish({ volumeId: m.v.volumeId, targetPath: m.v.targetPath });
  });

  it('a pod whose identity may not unwrap with the key gets PERMISSION_DENIED naming the template and the key, not the value', async () => {
    const m = await mount(`api: ${markers[1]}\n`, NO_UNWRAP);
    const err = await rpcError(m.publish());
    expect(err.code).toBe(status.PERMISSION_DENIED);
    expect(err.details).toContain('objects[1] (app): template "app.yaml" (ConfigMap default/');
    expect(err.details).toContain('line 1, column 6');
    expect(err.details).toContain(`${h.vault.url}/keys/app-config/`);
    expect(err.details).toContain('Key Vault Crypto Service Encryption User');
    expect(err.details).not.toContain(API_KEY);
  });

  it('a tampered marker fails naming its line and column, and nothing is mounted', async () => {
    const api = markers[1] as string;
    const i = api.length - 10;
    const tampered = api.slice(0, i) + (api[i] === 'A' ? 'B' : 'A') + api.slice(i + 1);
    const m = await mount(`ok: 1\n  api: ${tampered}\n`);
    const err = await rpcError(m.publish());
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toMatch(/template "app.yaml" \(ConfigMap default\/[a-z0-9]+-cfg key app.yaml\): line 2, column 8: /);
    await expect(readFile(join(m.v.targetPath, 'app.yaml'))).rejects.toThrow();
  });

  it('a marker sealed with a key of a vault the driver does not allow is refused before any call to it', async () => {
    const foreign = await startDevVault({ seed: parseSeed('clients: []\nkeys:\n  - name: elsewhere\n', 'foreign') });
    try {
      const [marker] = await seal(foreign, 'elsewhere', ['x']);
      const m = await mount(`x: ${marker}\n`);
      const calls = foreign.vaultLog.length;
      const reads = h.vault.requests.secret ?? 0;
      const err = await rpcError(m.publish());
      expect(err.code).toBe(status.INVALID_ARGUMENT);
      expect(err.details).toContain(`a sealed value names key vault ${foreign.url} is outside vault.azure.net; the node's operator must allow it with --allow-vault-uri`);
      expect(err.details).toMatch(/template "app.yaml" \(ConfigMap default\/[a-z0-9]+-cfg key app.yaml\): line 1, column 4: /);
      expect(foreign.vaultLog.length).toBe(calls);
      expect(h.vault.requests.secret ?? 0).toBe(reads); // refused before the class's objects are fetched too
    } finally {
      await foreign.close();
    }
  });

  it('a binding\'s podvault.dev/allowed-objects rule applies to a sealed value\'s key, before any unwrap', async () => {
    await setUp(h);
    h.vault.store.putClient({ clientId: 'sp-a', clientSecret: 'sp-a-secret-Hh2-never-log', managedIdentity: false, read: ['team-a-*'], crypto: [{ role: 'crypto-service-encryption-user', keys: ['app-config'] }] });
    const binding = (name: string, selector: string, allowed: string) => ({ apiVersion: 'aadpodidentity.k8s.io/v1', kind: 'AzureIdentityBinding', metadata: { name, namespace: 'default', annotations: { 'podvault.dev/allowed-objects': allowed } }, spec: { azureIdentity: 'id-a', selector } });
    await h.writeObjects('sealed-bindings.yaml', [binding('secrets-only', 'secrets-only', '127/team-a-*'), binding('with-key', 'with-key', '127/team-a-*,127/app-config')]);
    await h.writeClass('sealed-pi', {
      vaultUri: h.vault.url,
      tenantId: h.vault.tenantId,
      usePodIdentity: 'true',
      objects: objectsYaml([{ objectName: 'team-a-secret', objectType: 'secret' }, { objectName: 'app', objectType: 'template', template: `a: {{ secret "team-a-secret" }}\nb: ${markers[1]}\n` }]),
    });
    const before = unwraps();
    const refused = await publishAs(h, 'sealed-rule-1', 'sealed-pi', { label: 'secrets-only' });
    expect(refused.code).toBe(status.PERMISSION_DENIED);
    expect(refused.details).toContain('line 2, column 4');
    expect(refused.details).toContain('the pod may not use key "app-config" of');
    expect(refused.details).toContain('not in AzureIdentityBinding default/secrets-only annotation podvault.dev/allowed-objects');
    expect(unwraps()).toBe(before);
    const allowed = await publishAs(h, 'sealed-rule-2', 'sealed-pi', { label: 'with-key' });
    expect(allowed.text).toBe(TEAM_A_VALUE);
    expect(unwraps()).toBe(before + 1);
  });
});
