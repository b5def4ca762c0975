import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { parse as parseYaml, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyVersion } from '../src/devvault/key-crypto.js';
import type { DevVault } from '../src/devvault/server.js';
import { MAX_CLASS_TEMPLATE_BYTES, MAX_CLASS_UNWRAPS } from '../src/providers/azure/template-files.js';
import { additionalData, encodeMarker } from '../src/sealed/format.js';
import { renderTemplate } from '../src/templates/render-template.js';
import { MAX_TEMPLATE_BYTES, parseTemplate } from '../src/templates/template-syntax.js';
import { isRoot, rpcError, startHarness } from './support/harness.js';
import type { Harness } from './support/harness.js';
import { sealAsAdmin } from './support/sealing.js';
import { readJavaProperties } from './support/java-properties.js';
import { KubeApiDouble } from './support/kube-api-double.js';

const objectsYaml = (entries: readonly object[]): string => stringify({ array: entries.map((e) => stringify(e)) });
const APP = { clientid: 'att-app', clientsecret: 'att-app-secret-0001' };
const NO_UNWRAP = { clientid: 'att-reader', clientsecret: 'att-reader-secret-0001' };
const SEALED_VALUE = 'sv-Tq93-never-log-me';

const seal = (vault: DevVault, keyName: string, values: string[]): Promise<string[]> => sealAsAdmin(vault, keyName, values, 'att-sealer');

/** A well-formed marker under a fresh random "data key" of `keyId`: decodes, and would cost one unwrap. */
const junkMarker = (keyId: string): string => encodeMarker(additionalData(keyId, randomBytes(256)), randomBytes(12), randomBytes(24));

/**
 * Hostile tenants against `objectType: template` (docs/security.md §14): a class author, a
 * ConfigMap author of the same namespace, a pod author of another namespace and a sealed-value
 * author, through the real CSI socket, dev-vault and the real Azure SDKs. Each case is an
 * attack; the assertion is the promise that holds.
 */
describe.skipIf(!isRoot)('templates: attacks by class, ConfigMap and marker authors', () => {
  let h: Harness;
  let markers: string[];
  let keyVersion: string;
  beforeAll(async () => {
    h = await startHarness({ rotationInterval: '1s' });
    const { jwk, privateKey } = generateKeyVersion({ kty: 'RSA', size: 2048, crv: 'P-256' });
    keyVersion = h.vault.store.putKey('att-cfg', jwk, privateKey);
    h.vault.store.putClient({ clientId: APP.clientid, clientSecret: APP.clientsecret, managedIdentity: false, read: ['*'], crypto: [{ role: 'crypto-service-encryption-user', keys: ['att-cfg'] }] });
    h.vault.store.putClient({ clientId: NO_UNWRAP.clientid, clientSecret: NO_UNWRAP.clientsecret, managedIdentity: false, read: ['*'] });
    h.vault.store.setSecret('plain', 'hunter2');
    markers = await seal(h.vault, 'att-cfg', [SEALED_VALUE, '{{ secret "plain" }} {{pv:AAAA}}']);
  });
  afterAll(async () => {
    await h?.close();
  });

  const unwraps = (): number => h.vault.vaultLog.filter((r) => r.path.endsWith('/unwrapkey')).length;
  const configMap = (name: string, data: Record<string, string>, namespace = 'default') => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace }, data });

  async function mount(objects: readonly object[], secrets = APP, namespace = 'default') {
    const name = `a${Math.random().toString(36).slice(2, 9)}`;
    await h.writeClass(name, { vaultUri: h.vault.url, tenantId: h.vault.tenantId, objects: objectsYaml(objects) }, { namespace });
    const v = await h.volume({ className: name, secrets, namespace });
    return { v, publish: () => h.client.publish(v.request), read: (f: string) => readFile(join(v.targetPath, f), 'utf8'), done: () => h.client.unpublish({ volumeId: v.volumeId, targetPath: v.targetPath }) };
  }

  it('many templates naming one 256 KiB ConfigMap key are refused once the class\'s template text passes its bound, before parsing the rest or any vault call', async () => {
    // Worst text for the scanner (a refusal every third character): 255 templates of it held the
    // serving thread 0.85-1.4 s per publish and per rotation before the per-class bound.
    const text = '{{ '.repeat(Math.floor(MAX_TEMPLATE_BYTES / 3));
    await h.writeObjects('att-big-cm.yaml', [configMap('att-big', { t: text })]);
    const templates = Array.from({ length: 200 }, (_, i) => ({ objectName: `t${i}`, objectType: 'template', configMap: { name: 'att-big', key: 't' } }));
    const m = await mount([{ objectName: 'plain', objectType: 'secret' }, ...templates]);
    const reads = h.vault.requests.secret ?? 0;
    const err = await rpcError(m.publish());
    expect(err.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(err.details).toContain(`over the limit of ${MAX_CLASS_TEMPLATE_BYTES} bytes of template text per class`);
    expect(h.vault.requests.secret ?? 0).toBe(reads);
  });

  it('templates of one class cannot add up to more unwraps than one text may make', async () => {
    const keyId = `${h.vault.url}/keys/att-cfg/${keyVersion}`;
    // Each template stays under the per-text bound of 64 data keys; together they are over it.
    const perTemplate = 40;
    const templates = Array.from({ length: 3 }, (_, i) => ({ objectName: `s${i}`, objectType: 'template', template: Array.from({ length: perTemplate }, () => `- ${junkMarker(keyId)}`).join('\n') }));
    const m = await mount(templates);
    const before = unwraps();
    const err = await rpcError(m.publish());
    expect(err.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(err.details).toContain(`over the limit of ${MAX_CLASS_UNWRAPS} unwraps per publish`);
    expect(unwraps()).toBe(before);
    // The same data key in many templates is one unwrap each: counted too.
    const same = junkMarker(keyId);
    const many = await mount(Array.from({ length: MAX_CLASS_UNWRAPS + 1 }, (_, i) => ({ objectName: `r${i}`, objectType: 'template', template: `x: ${same}` })));
    const refused = await rpcError(many.publish());
    expect(refused.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(unwraps()).toBe(before);
  });

  it('a marker whose wrapped data key the key never made (edited, or copied from another key) is INVALID_ARGUMENT naming the line, not an internal error', async () => {
    const m = await mount([{ objectName: 'tpl', objectType: 'template', template: `a: 1\nb: ${junkMarker(`${h.vault.url}/keys/att-cfg/${keyVersion}`)}\n` }]);
    const before = unwraps();
    const err = await rpcError(m.publish());
    expect(unwraps()).toBe(before + 1);
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toContain('template "tpl" (inline): line 2, column 4');
    expect(err.details).toContain('it was not wrapped by this key version');
    await expect(m.read('tpl')).rejects.toThrow();
  });

  it.each(['constructor', '__proto__', 'toString', 'hasOwnProperty'])('a configMap key named like an object property (%s) is a missing key, not an internal error', async (key) => {
    await h.writeObjects(`att-proto-${key}.yaml`, [configMap(`att-proto-${key.replace(/_/g, '').toLowerCase()}`, { other: 'x' })]);
    const m = await mount([{ objectName: 'tpl', objectType: 'template', configMap: { name: `att-proto-${key.replace(/_/g, '').toLowerCase()}`, key } }]);
    const err = await rpcError(m.publish());
    expect(err.code).toBe(status.NOT_FOUND);
    expect(err.details).toContain(`has no key ${JSON.stringify(key)}`);
  });

  it('a pod in another namespace learns nothing of a ConfigMap of the class author\'s namespace: same answer whether it exists or not', async () => {
    await h.writeObjects('att-ns.yaml', [configMap('att-secret-cfg', { t: 'team-a only' }, 'team-a')]);
    const exists = await mount([{ objectName: 'tpl', objectType: 'template', configMap: { name: 'att-secret-cfg', key: 't' } }], APP, 'team-b');
    const absent = await mount([{ objectName: 'tpl', objectType: 'template', configMap: { name: 'att-no-such-cfg', key: 't' } }], APP, 'team-b');
    const a = await rpcError(exists.publish());
    const b = await rpcError(absent.publish());
    expect(a.code).toBe(status.NOT_FOUND);
    expect(b.code).toBe(a.code);
    expect(a.details.replaceAll('att-secret-cfg', 'X')).toBe(b.details.replaceAll('att-no-such-cfg', 'X'));
    expect(a.details).toContain('namespace "team-b"');
  });

  it('identities never share unwraps: a pod without unwrap permission publishing beside one with it gets PERMISSION_DENIED, every time', async () => {
    const template = `v: ${markers[0]}\n`;
    for (let round = 0; round < 3; round++) {
      const allowed = await mount([{ objectName: 'tpl', objectType: 'template', template }], APP);
      const denied = await mount([{ objectName: 'tpl', objectType: 'template', template }], NO_UNWRAP);
      const [ok, refused] = await Promise.allSettled([allowed.publish(), denied.publish()]);
      expect(ok.status).toBe('fulfilled');
      expect(await allowed.read('tpl')).toBe(`v: ${SEALED_VALUE}\n`);
      expect(refused.status).toBe('rejected');
      const err = await rpcError(denied.publish());
      expect(err.code).toBe(status.PERMISSION_DENIED);
      expect(err.details).not.toContain(SEALED_VALUE);
      await expect(denied.read('tpl')).rejects.toThrow();
      await allowed.done();
    }
    expect(h.logs.join('\n')).not.toContain(SEALED_VALUE);
  });

  it('a sealed value holding template text is written as it is, never expanded', async () => {
    const m = await mount([{ objectName: 'plain', objectType: 'secret' }, { objectName: 'tpl', objectType: 'template', template: `v: ${markers[1]}` }]);
    await m.publish();
    expect(await m.read('tpl')).toBe('v: {{ secret "plain" }} {{pv:AAAA}}');
    await m.done();
  });
});

describe.skipIf(!isRoot)('templates: attacks through the Kubernetes API', () => {
  let api: KubeApiDouble;
  let h: Harness;
  beforeAll(async () => {
    api = await new KubeApiDouble().start();
    h = await startHarness({ standalone: undefined, kubeconfig: await api.writeKubeconfig(), rotationInterval: '1s' });
  });
  afterAll(async () => {
    await h?.close();
    await api?.close();
  });

  it('many templates naming small keys of one ConfigMap too big to cache read it from the API once per publish, not once per template', async () => {
    // Over the cache's 256 KiB per record: read at each use. 100 templates were 100 GETs of ~900 KiB
    // (API load, and a JSON parse each on the serving thread) per publish and rotation.
    api.put('configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'att-fat', namespace: 'default' }, data: { t: 'x={{ secret "db-password" | json }}\n', pad: 'p'.repeat(900 * 1024) } });
    const templates = Array.from({ length: 100 }, (_, i) => ({ objectName: `t${i}`, objectType: 'template', configMap: { name: 'att-fat', key: 't' } }));
    api.put('secretproviderclasses', {
      apiVersion: 'secrets-store.csi.x-k8s.io/v1',
      kind: 'SecretProviderClass',
      metadata: { name: 'att-fat', namespace: 'default' },
      spec: { provider: 'azure', parameters: { vaultUri: h.vault.url, tenantId: h.vault.tenantId, objects: objectsYaml([{ objectName: 'db-password', objectType: 'secret' }, ...templates]) } },
    });
    const v = await h.volume({ className: 'att-fat' });
    const gets = (): number => api.requests.filter((r) => r.startsWith('GET /api/v1/namespaces/default/configmaps/att-fat')).length;
    const before = gets();
    await h.client.publish(v.request);
    expect(await readFile(join(v.targetPath, 't99'), 'utf8')).toBe('x=pw-Zq81-never-log-me\n');
    expect(gets() - before).toBe(1);
    await h.client.unpublish({ volumeId: v.volumeId, targetPath: v.targetPath });
  });
});

describe('templates: escapes under hostile values', () => {
  const render = (text: string, value: string): string => renderTemplate(parseTemplate(text, 'tpl'), () => value, 1 << 22, 'tpl', '--max-object-size').toString('utf8');
  const hostile = ['*alias', '&anchor x', '!!python/object/apply:os.system [id]', '! tag', '\\u0041\\', '"\\"', '  lead', '\t\ftabs', '# c', '!bang', 'a\u2028b\u2029c\u0085d', 'nul\u0000', 'cr\rlf\n', '\ufeffbom', '\uffff', 'k=v:w', '}} {{ secret "x" }}'];

  it.each(hostile)('%j survives | json, | yaml (YAML 1.2 and 1.1) and | properties exactly', (value) => {
    expect(JSON.parse(render('{"k": "{{ secret "v" | json }}"}', value))).toEqual({ k: value });
    for (const version of ['1.2', '1.1'] as const) {
      expect(parseYaml(render('k: "{{ secret "v" | yaml }}"\nnext: 1\n', value), { version })).toEqual({ k: value, next: 1 });
    }
    const props = readJavaProperties(render('k={{ secret "v" | properties }}\nnext=1\n', value));
    expect([...props.entries()]).toEqual([['k', value], ['next', '1']]);
  });
});
