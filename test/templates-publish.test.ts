import { X509Certificate } from 'node:crypto';
import { readFile, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { parse as parseYaml, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isRoot, rpcError, startHarness } from './support/harness.js';
import type { Harness } from './support/harness.js';
import { readJavaProperties } from './support/java-properties.js';
import { certificateChain } from './support/certs.js';
import { generateKeyVersion } from '../src/devvault/key-crypto.js';

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Values that break a naive template: quotes, backslashes, line ends, `#`, separators, leading spaces, unicode line separators. */
const TRICKY = '  p"w\\d\n#not: a comment = x!\r\tend\u2028\u0001é';
const APP = { clientid: 'tmpl-app', clientsecret: 'tmpl-secret-0001' };

/** The `objects` parameter as users write it (entries are YAML strings; templates hold mappings and block text). */
const objectsYaml = (entries: readonly object[]): string => stringify({ array: entries.map((e) => stringify(e)) });

/**
 * `objectType: template` through the real CSI socket in standalone mode: templates inline and
 * from ConfigMaps of the pod's namespace (`kind: ConfigMap` documents of the directory), their
 * references fetched once with the class's objects, escapes proven by parsing the files with
 * JSON.parse, the `yaml` library and a Java properties reader, and rotation re-rendering them.
 */
describe.skipIf(!isRoot)('templates: config files rendered onto the tmpfs', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ rotationInterval: '1s' });
    h.vault.store.putClient({ clientId: APP.clientid, clientSecret: APP.clientsecret, managedIdentity: false, read: ['*'] });
    h.vault.store.setSecret('tricky', TRICKY);
    h.vault.store.setSecret('plain', 'hunter2');
    const chain = certificateChain();
    h.vault.store.putCertificate('tmpl-tls', { cer: chain.leaf.der, secretValue: new X509Certificate(chain.leaf.der).toString(), contentType: 'application/x-pem-file' });
    const { jwk, privateKey } = generateKeyVersion({ kty: 'EC', size: 2048, crv: 'P-256' });
    h.vault.store.putKey('tmpl-signing', jwk, privateKey);
  });
  afterAll(async () => {
    await h?.close();
  });

  async function mount(objects: readonly object[], options: { namespace?: string } = {}) {
    const name = `t${Math.random().toString(36).slice(2, 9)}`;
    const namespace = options.namespace ?? 'default';
    await h.writeClass(name, { vaultUri: h.vault.url, tenantId: h.vault.tenantId, objects: objectsYaml(objects) }, { namespace });
    const v = await h.volume({ className: name, namespace, secrets: APP });
    return {
      v,
      publish: () => h.client.publish(v.request),
      read: (f: string) => readFile(join(v.targetPath, f), 'utf8'),
      done: () => h.client.unpublish({ volumeId: v.volumeId, targetPath: v.targetPath }),
    };
  }

  const configMap = (name: string, namespace: string, data: Record<string, string>) => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace }, data });

  it('renders an inline template with exact bytes, fetching each referenced object once', async () => {
    const m = await mount([
      { objectName: 'plain', objectType: 'secret' },
      { objectName: 'db-user', objectType: 'secret', objectAlias: 'user' },
      { objectName: 'app', objectType: 'template', objectAlias: 'app.conf', template: 'user={{ secret "user" }}\npassword={{secret "plain"}}\nagain={{ secret "plain" }}\nbraces={{ "{{" }} and {{ .Values.x }} stay\n' },
    ]);
    const before = h.vault.requests.secret ?? 0;
    await m.publish();
    expect(await m.read('app.conf')).toBe('user=app\npassword=hunter2\nagain=hunter2\nbraces={{ and {{ .Values.x }} stay\n');
    // The objects' own files are still there, byte for byte, and no object was read twice.
    expect(await m.read('plain')).toBe('hunter2');
    expect(await m.read('user')).toBe('app');
    expect((h.vault.requests.secret ?? 0) - before).toBe(2);
    await m.done();
  });

  it('key and cert refer to the class\'s key and certificate objects: the same PEM as their own files', async () => {
    const m = await mount([
      { objectName: 'tmpl-signing', objectType: 'key', objectAlias: 'signing.pem' },
      { objectName: 'tmpl-tls', objectType: 'cert' },
      { objectName: 'keys', objectType: 'template', objectAlias: 'keys.json', template: '{"key": "{{ key "signing.pem" | json }}", "cert": "{{ cert "tmpl-tls" | json }}"}' },
    ]);
    await m.publish();
    const keys = JSON.parse(await m.read('keys.json')) as { key: string; cert: string };
    expect(keys.key).toBe(await m.read('signing.pem'));
    expect(keys.key).toMatch(/^-----BEGIN PUBLIC KEY-----\n/);
    expect(keys.cert).toBe(await m.read('tmpl-tls'));
    expect(keys.cert).toMatch(/^-----BEGIN CERTIFICATE-----\n/);
    await m.done();
  });

  it('a jmesPath field is referred to by its objectAlias, with the field\'s value', async () => {
    h.vault.store.setSecret('db-json', JSON.stringify({ user: 'svc', password: 'p"w' }));
    const m = await mount([
      { objectName: 'db-json', objectType: 'secret', jmesPath: [{ path: 'password', objectAlias: 'db-pw' }] },
      { objectName: 'tpl', objectType: 'template', template: 'pw: "{{ secret "db-pw" | yaml }}"\n' },
    ]);
    await m.publish();
    expect(parseYaml(await m.read('tpl'))).toEqual({ pw: 'p"w' });
    await m.done();
  });

  it('escapes for JSON, YAML and properties: the files parse back to the exact value', async () => {
    await h.writeObjects('cm-escapes.yaml', [
      configMap('app-config', 'default', {
        'config.json': '{"password": "{{ secret "tricky" | json }}", "n": 1}\n',
        'config.yaml': 'db:\n  password: "{{ secret "tricky" | yaml }}"\n  # a comment\n',
        'app.properties': 'db.password={{ secret "tricky" | properties }}\nnext=ok\n',
      }),
    ]);
    const m = await mount([
      { objectName: 'tricky', objectType: 'secret' },
      { objectName: 'json', objectType: 'template', objectAlias: 'config.json', configMap: { name: 'app-config', key: 'config.json' } },
      { objectName: 'yaml', objectType: 'template', objectAlias: 'config.yaml', configMap: { name: 'app-config', key: 'config.yaml' } },
      { objectName: 'props', objectType: 'template', objectAlias: 'app.properties', configMap: { name: 'app-config', key: 'app.properties' } },
    ]);
    await m.publish();
    expect(await m.read('tricky')).toBe(TRICKY);
    expect(JSON.parse(await m.read('config.json'))).toEqual({ password: TRICKY, n: 1 });
    expect(parseYaml(await m.read('config.yaml'))).toEqual({ db: { password: TRICKY } });
    const props = readJavaProperties(await m.read('app.properties'));
    expect(props.get('db.password')).toBe(TRICKY);
    expect(props.get('next')).toBe('ok');
    expect([...props.keys()]).toEqual(['db.password', 'next']);
    // Without the pipe the value goes in as it is (and here it would break the file).
    expect(h.logs.join('\n')).not.toContain('p"w');
    await m.done();
  });

  it('reads ConfigMaps of the pod\'s namespace only: the same name in another namespace is not used', async () => {
    await h.writeObjects('cm-other.yaml', [configMap('elsewhere', 'team-b', { t: 'from team-b {{ secret "plain" }}' })]);
    const m = await mount([
      { objectName: 'plain', objectType: 'secret' },
      { objectName: 'tpl', objectType: 'template', configMap: { name: 'elsewhere', key: 't' } },
    ]);
    const err = await rpcError(m.publish());
    expect(err.code).toBe(status.NOT_FOUND);
    expect(err.details).toContain('objects[1] (tpl): template "tpl" (ConfigMap default/elsewhere key t)');
    expect(err.details).toContain('not found in namespace "default"');
    // The class names no namespace a template could read from: there is no such field.
    const bad = await mount([{ objectName: 'tpl', objectType: 'template', configMap: { name: 'elsewhere', key: 't', namespace: 'team-b' } }]);
    const refused = await rpcError(bad.publish());
    expect(refused.code).toBe(status.INVALID_ARGUMENT);
    // A pod of team-b reads it.
    const b = await mount([{ objectName: 'plain', objectType: 'secret' }, { objectName: 'tpl', objectType: 'template', configMap: { name: 'elsewhere', key: 't' } }], { namespace: 'team-b' });
    await b.publish();
    expect(await b.read('tpl')).toBe('from team-b hunter2');
    await b.done();
  });

  it('a missing key of the ConfigMap is named', async () => {
    await h.writeObjects('cm-keys.yaml', [configMap('few-keys', 'default', { a: 'x' })]);
    const m = await mount([{ objectName: 'tpl', objectType: 'template', configMap: { name: 'few-keys', key: 'b' } }]);
    const err = await rpcError(m.publish());
    expect(err.code).toBe(status.NOT_FOUND);
    expect(err.details).toContain('ConfigMap default/few-keys has no key "b"');
  });

  it.each([
    ['an object not in the class', 'x {{ secret "db-password" }}', /objects\[1\] \(tpl\): template "tpl" \(inline\): line 1, column 3: secret "db-password": no object of the class has that objectName or objectAlias/],
    ['an object of another type', '{{ key "plain" }}', /line 1, column 1: key "plain": the class's object of that name is a secret; write \{\{ secret "plain" \}\}/],
    ['an unknown function', 'a\nb {{ lookup "plain" }}', /line 2, column 6: unknown function "lookup"/],
    ['an unknown pipe', 'a\n  {{ secret "plain" | base64 }}', /template "tpl" \(inline\): line 2, column 23: unknown pipe "base64": the pipes are json, yaml, properties/],
    ['an expression over two lines', '{{ secret "plain"\n}}', /line 1, column 18: expected \}\} to end the expression/],
    ['a name without quotes', '{{ secret plain }}', /line 1, column 11: secret takes an object name in double quotes/],
  ])('fails the publish naming the template, line and column: %s', async (_what, text, message) => {
    const m = await mount([{ objectName: 'plain', objectType: 'secret' }, { objectName: 'tpl', objectType: 'template', template: text }]);
    const before = h.vault.requests.secret ?? 0;
    const err = await rpcError(m.publish());
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toMatch(message);
    expect((h.vault.requests.secret ?? 0) - before).toBe(0); // refused before any vault call
  });

  it('refuses template entries with vault fields, two sources, or none', async () => {
    for (const [entry, message] of [
      [{ objectName: 'tpl', objectType: 'template', template: 'x', objectVersion: 'abc' }, /field objectVersion is not supported for objectType template/],
      [{ objectName: 'tpl', objectType: 'template', template: 'x', configMap: { name: 'a', key: 'b' } }, /needs exactly one of configMap/],
      [{ objectName: 'tpl', objectType: 'template' }, /needs exactly one of configMap/],
      [{ objectName: 'tpl', objectType: 'template', configMap: { name: 'Bad_Name', key: 'b' } }, /configMap.name must be a ConfigMap name/],
      [{ objectName: 'tpl', objectType: 'template', template: 'x', objectAlias: '../escape' }, /objectAlias/],
    ] as const) {
      const m = await mount([entry]);
      const err = await rpcError(m.publish());
      expect(err.code).toBe(status.INVALID_ARGUMENT);
      expect(err.details).toMatch(message);
    }
  });

  it('refuses a rendered file over --max-object-size, before writing anything', async () => {
    h.vault.store.setSecret('kib', 'k'.repeat(1024));
    const text = Array.from({ length: 40 }, () => '{{ secret "kib" }}').join('');
    const small = await startHarness({ maxObjectSize: '32Ki' });
    try {
      small.vault.store.putClient({ clientId: APP.clientid, clientSecret: APP.clientsecret, managedIdentity: false, read: ['*'] });
      small.vault.store.setSecret('kib', 'k'.repeat(1024));
      await small.writeClass('big', { vaultUri: small.vault.url, tenantId: small.vault.tenantId, objects: objectsYaml([{ objectName: 'kib', objectType: 'secret' }, { objectName: 'tpl', objectType: 'template', template: text }]) });
      const v = await small.volume({ className: 'big', secrets: APP });
      const err = await rpcError(small.client.publish(v.request));
      expect(err.code).toBe(status.RESOURCE_EXHAUSTED);
      expect(err.details).toContain('the rendered file is over the limit of 32768 bytes per object (--max-object-size)');
    } finally {
      await small.close();
    }
  });

  it('rotation: a new version of a referenced secret, or a changed ConfigMap, re-renders the file in the same swap', async () => {
    h.vault.store.setSecret('rot-pw', 'first');
    await h.writeObjects('cm-rot.yaml', [configMap('rot', 'default', { t: 'pw={{ secret "rot-pw" }}\n' })]);
    const m = await mount([
      { objectName: 'rot-pw', objectType: 'secret' },
      { objectName: 'conf', objectType: 'template', configMap: { name: 'rot', key: 't' } },
    ]);
    await m.publish();
    expect(await m.read('conf')).toBe('pw=first\n');
    const data = await readlink(join(m.v.targetPath, '..data'));

    h.vault.store.setSecret('rot-pw', 'second');
    await wait(1100);
    await m.publish();
    // Both files come from the one new ..data directory: a reader never sees one without the other.
    const swapped = await readlink(join(m.v.targetPath, '..data'));
    expect(swapped).not.toBe(data);
    expect(await readFile(join(m.v.targetPath, swapped, 'conf'), 'utf8')).toBe('pw=second\n');
    expect(await readFile(join(m.v.targetPath, swapped, 'rot-pw'), 'utf8')).toBe('second');

    await h.writeObjects('cm-rot.yaml', [configMap('rot', 'default', { t: 'password: {{ secret "rot-pw" }}\n' })]);
    await wait(1100);
    await m.publish();
    expect(await m.read('conf')).toBe('password: second\n');
    expect((await readdir(m.v.targetPath)).filter((n) => !n.startsWith('..')).sort()).toEqual(['conf', 'rot-pw']);
    await m.done();
  });
});
