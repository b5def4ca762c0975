import { createPrivateKey, X509Certificate } from 'node:crypto';
import { execFile } from 'node:child_process';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { status } from '@grpc/grpc-js';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { certificateChain, pfx } from './support/certs.js';
import { isRoot, rpcError, startHarness } from './support/harness.js';
import type { Harness } from './support/harness.js';
import { buildDriverConfig } from '../src/config/driver-config.js';
import type { DriverFlags } from '../src/config/driver-config.js';
import { driverCommand } from '../src/cli/driver-command.js';
import { extractSecretFields } from '../src/untrusted/secret-fields.js';

const run = promisify(execFile);
const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The files beyond one per object: the Azure provider's `.crt`/`.key` pair and PEM chain order
 * (its flags, and per class), jmesPath fields of JSON/YAML secrets, and the class's env file.
 * Expected bytes come from Node's crypto and from a real `sh`, not from podvault's code.
 */
const chain = certificateChain();
const pem = (der: Buffer): string => new X509Certificate(der).toString();
const keyPem = createPrivateKey(chain.leaf.keyPem).export({ type: 'pkcs8', format: 'pem' }).toString();
const bundle = pfx(chain.leaf.key, [chain.root, chain.leaf, chain.intermediate]); // scrambled on purpose
const leafFirst = pem(chain.leaf.der) + pem(chain.intermediate.der) + pem(chain.root.der);
const bundleOrder = pem(chain.root.der) + pem(chain.leaf.der) + pem(chain.intermediate.der);
const pemStored = `${keyPem}${pem(chain.root.der)}${pem(chain.leaf.der)}`;

/** The `objects` parameter as users write it, entries with lists (jmesPath) included. */
const objectsYaml = (entries: readonly object[]): string => stringify({ array: entries.map((e) => stringify({ objectType: 'secret', ...e })) });

async function setup(flags: DriverFlags = {}): Promise<Harness> {
  const h = await startHarness({ rotationInterval: '1s', ...flags });
  const store = h.vault.store;
  store.putClient({ clientId: 'outputs-app', clientSecret: 'outputs-secret-0001', managedIdentity: false, read: ['*'] });
  store.putCertificate('tls-pfx', { cer: chain.leaf.der, secretValue: bundle.toString('base64'), contentType: 'application/x-pkcs12' });
  store.putCertificate('tls-pem', { cer: chain.leaf.der, secretValue: pemStored, contentType: 'application/x-pem-file' });
  return h;
}

function mounter(h: Harness) {
  return async (objects: readonly object[], parameters: Record<string, string> = {}) => {
    const name = `o${Math.random().toString(36).slice(2, 9)}`;
    await h.writeClass(name, { vaultUri: h.vault.url, tenantId: h.vault.tenantId, objects: objectsYaml(objects), ...parameters });
    const v = await h.volume({ className: name, secrets: { clientid: 'outputs-app', clientsecret: 'outputs-secret-0001' } });
    const publish = () => h.client.publish(v.request);
    return {
      publish,
      read: (f: string) => readFile(join(v.targetPath, f)),
      mode: async (f: string) => (await stat(join(v.targetPath, f))).mode & 0o7777,
      names: async () => (await readdir(v.targetPath)).filter((n) => !n.startsWith('..')).sort(),
      path: (f: string) => join(v.targetPath, f),
      done: () => h.client.unpublish({ volumeId: v.volumeId, targetPath: v.targetPath }),
    };
  };
}

describe.skipIf(!isRoot)('certificate files: writeCertAndKeyInSeparateFiles and constructPEMChain (the Azure provider\'s flags, per class)', () => {
  let h: Harness;
  let mount: ReturnType<typeof mounter>;
  beforeAll(async () => {
    h = await setup();
    mount = mounter(h);
  });
  afterAll(async () => {
    await h?.close();
  });

  it('by default (the flags\' defaults) one file per object, the chain leaf first', async () => {
    const m = await mount([{ objectName: 'tls-pfx' }]);
    await m.publish();
    expect(await m.names()).toEqual(['tls-pfx']);
    expect((await m.read('tls-pfx')).toString()).toBe(keyPem + leafFirst);
    await m.done();
  });

  it('writeCertAndKeyInSeparateFiles "true": <file>.crt holds the certificates, <file>.key the key, beside the combined file, with its filePermission', async () => {
    const m = await mount([{ objectName: 'tls-pfx', filePermission: '0600' }, { objectName: 'tls-pem', objectAlias: 'tls/stored.pem' }], { writeCertAndKeyInSeparateFiles: 'true' });
    await m.publish();
    expect(await m.names()).toEqual(['tls', 'tls-pfx', 'tls-pfx.crt', 'tls-pfx.key']);
    expect((await m.read('tls-pfx')).toString()).toBe(keyPem + leafFirst);
    expect((await m.read('tls-pfx.crt')).toString()).toBe(leafFirst);
    expect((await m.read('tls-pfx.key')).toString()).toBe(keyPem);
    for (const f of ['tls-pfx', 'tls-pfx.crt', 'tls-pfx.key']) expect(await m.mode(f)).toBe(0o600);
    // A PEM-stored certificate is split as stored, not reordered.
    expect((await m.read('tls/stored.pem.crt')).toString()).toBe(pem(chain.root.der) + pem(chain.leaf.der));
    expect((await m.read('tls/stored.pem.key')).toString()).toBe(keyPem);
    await m.done();
  });

  it('only certificate-backed secrets in PEM get the pair: not objectFormat pfx, not cert or a plain secret', async () => {
    const m = await mount([{ objectName: 'tls-pfx', objectFormat: 'pfx', objectAlias: 'tls.pfx' }, { objectName: 'tls-pfx', objectType: 'cert', objectAlias: 'leaf.pem' }, { objectName: 'db-user' }], { writeCertAndKeyInSeparateFiles: 'true' });
    await m.publish();
    expect(await m.names()).toEqual(['db-user', 'leaf.pem', 'tls.pfx']);
    await m.done();
  });

  it('constructPEMChain "false" keeps the bundle\'s certificate order', async () => {
    const m = await mount([{ objectName: 'tls-pfx' }], { constructPEMChain: 'false', writeCertAndKeyInSeparateFiles: 'true' });
    await m.publish();
    expect((await m.read('tls-pfx')).toString()).toBe(keyPem + bundleOrder);
    expect((await m.read('tls-pfx.crt')).toString()).toBe(bundleOrder);
    await m.done();
  });

  it('a .crt name another object already uses is refused naming both, nothing written', async () => {
    const m = await mount([{ objectName: 'tls-pfx' }, { objectName: 'db-user', objectAlias: 'tls-pfx.crt' }], { writeCertAndKeyInSeparateFiles: 'true' });
    const err = await rpcError(m.publish());
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toMatch(/file name "tls-pfx\.crt" is produced twice \(secret\/tls-pfx and secret\/db-user\)/);
  });

  it('a bad value is refused naming the parameter', async () => {
    const m = await mount([{ objectName: 'tls-pfx' }], { constructPEMChain: 'yes' });
    const err = await rpcError(m.publish());
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toMatch(/parameter constructPEMChain must be "true" or "false"/);
  });
});

describe.skipIf(!isRoot)('the driver flags --write-cert-and-key-in-separate-files and --construct-pem-chain=false', () => {
  let h: Harness;
  let mount: ReturnType<typeof mounter>;
  beforeAll(async () => {
    h = await setup({ writeCertAndKeyInSeparateFiles: true, constructPemChain: 'false' });
    mount = mounter(h);
  });
  afterAll(async () => {
    await h?.close();
  });

  it('apply to every class that does not say otherwise', async () => {
    const m = await mount([{ objectName: 'tls-pfx' }]);
    await m.publish();
    expect(await m.names()).toEqual(['tls-pfx', 'tls-pfx.crt', 'tls-pfx.key']);
    expect((await m.read('tls-pfx.crt')).toString()).toBe(bundleOrder);
    await m.done();
  });

  it('a class\'s parameters override them', async () => {
    const m = await mount([{ objectName: 'tls-pfx' }], { writeCertAndKeyInSeparateFiles: 'false', constructPEMChain: 'true' });
    await m.publish();
    expect(await m.names()).toEqual(['tls-pfx']);
    expect((await m.read('tls-pfx')).toString()).toBe(keyPem + leafFirst);
    await m.done();
  });
});

describe.skipIf(!isRoot)('jmesPath: one file per field of a JSON or YAML secret', () => {
  let h: Harness;
  let mount: ReturnType<typeof mounter>;
  const password = "p'w $HOME `id` \\ \"q\"\nline2 ünï €";
  const json = JSON.stringify({ db: { password, port: 5432, tls: true }, users: [{ name: 'app' }, { name: 'ro' }] });
  beforeAll(async () => {
    h = await setup();
    mount = mounter(h);
    h.vault.store.setSecret('db-json', json);
    h.vault.store.setSecret('db-yaml', 'db:\n  password: yaml-pw\n  port: 5432\nlist: [a, b]\n');
    h.vault.store.setSecret('db-broken', 'db: key: "unclosed');
    h.vault.store.setSecret('db-bomb', `a: &a [x, x, x, x, x, x, x, x, x, x]\nb: [${Array(500).fill('*a').join(', ')}]\n`);
  });
  afterAll(async () => {
    await h?.close();
  });

  it('writes each field as its own file with the object\'s mode, and the object\'s file too (as the AWS provider)', async () => {
    const m = await mount([
      {
        objectName: 'db-json',
        filePermission: '0640',
        jmesPath: [
          { path: 'db.password', objectAlias: 'dbpw' },
          { path: 'db.port', objectAlias: 'conf/port' },
          { path: 'db.tls', objectAlias: 'conf/tls' },
          { path: 'users[*].name', objectAlias: 'conf/users' },
        ],
      },
      { objectName: 'db-yaml', jmesPath: [{ path: 'db.password', objectAlias: 'yamlpw' }, { path: 'list[1]', objectAlias: 'second' }] },
    ]);
    await m.publish();
    expect(await m.names()).toEqual(['conf', 'db-json', 'db-yaml', 'dbpw', 'second', 'yamlpw']);
    expect((await m.read('db-json')).toString()).toBe(json);
    expect((await m.read('dbpw')).toString()).toBe(password);
    expect((await m.read('conf/port')).toString()).toBe('5432');
    expect((await m.read('conf/tls')).toString()).toBe('true');
    expect((await m.read('conf/users')).toString()).toBe('["app","ro"]');
    expect((await m.read('yamlpw')).toString()).toBe('yaml-pw');
    expect((await m.read('second')).toString()).toBe('b');
    for (const f of ['dbpw', 'conf/port']) expect(await m.mode(f)).toBe(0o640);
    await m.done();
  });

  it('a field that selects nothing fails the publish naming object and path, never the value', async () => {
    const m = await mount([{ objectName: 'db-json', jmesPath: [{ path: 'db.nope', objectAlias: 'x' }] }]);
    const err = await rpcError(m.publish());
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toMatch(/secret "db-json": jmesPath "db\.nope" \(file "x"\) selects nothing/);
    expect(err.details).not.toContain('5432');
  });

  it('a value that is neither JSON nor YAML, or a YAML alias bomb, is refused without quoting it', async () => {
    for (const [objectName, message] of [
      ['db-broken', /secret "db-broken": the value is neither JSON nor YAML/],
      ['db-bomb', /secret "db-bomb": the value is neither JSON nor YAML/],
    ] as const) {
      const m = await mount([{ objectName, jmesPath: [{ path: 'db', objectAlias: 'x' }] }]);
      const err = await rpcError(m.publish());
      expect(err.code).toBe(status.INVALID_ARGUMENT);
      expect(err.details).toMatch(message);
      expect(err.details).not.toContain('unclosed');
    }
  });

  it('class mistakes are refused before any vault call, naming the object and field', async () => {
    const cases: [object, RegExp][] = [
      [{ objectName: 'db-json', jmesPath: [{ path: '.bad', objectAlias: 'x' }] }, /objects\[0\] \(db-json\): jmesPath\[0\]: field path "\.bad" is not a JMESPath expression/],
      [{ objectName: 'db-json', jmesPath: [{ path: 'db' }] }, /objects\[0\] \(db-json\): jmesPath\[0\]: field objectAlias is required/],
      [{ objectName: 'db-json', jmesPath: [{ path: 'db', objectAlias: '../escape' }] }, /jmesPath\[0\]: field objectAlias must not contain a '\.\.' segment/],
      [{ objectName: 'tls-pfx', objectType: 'cert', jmesPath: [{ path: 'db', objectAlias: 'x' }] }, /field jmesPath is only supported for objectType secret/],
    ];
    for (const [object, message] of cases) {
      const before = h.vault.requests.secret ?? 0;
      const err = await rpcError((await mount([object])).publish());
      expect(err.code).toBe(status.INVALID_ARGUMENT);
      expect(err.details).toMatch(message);
      expect(h.vault.requests.secret ?? 0).toBe(before);
    }
  });

  it('a field\'s file name another object uses is refused naming both', async () => {
    const m = await mount([{ objectName: 'db-json', jmesPath: [{ path: 'db.password', objectAlias: 'db-user' }] }, { objectName: 'db-user' }]);
    const err = await rpcError(m.publish());
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toMatch(/file name "db-user" is produced twice \(secret\/db-json and secret\/db-user\)/);
  });
});

describe.skipIf(!isRoot)('envFile: environment variables without a Kubernetes Secret', () => {
  let h: Harness;
  let mount: ReturnType<typeof mounter>;
  const tricky = "it's $HOME and `id` and $(id) \\n \\\\ \"dq\"\n\nline 3 ünïcödé € 🔑\n";
  beforeAll(async () => {
    h = await setup();
    mount = mounter(h);
    h.vault.store.setSecret('env-tricky', tricky);
    h.vault.store.setSecret('env-json', JSON.stringify({ password: "a'b'c", port: 5432 }));
    h.vault.store.setSecret('env-nul', 'a\u0000b');
    h.vault.store.setSecret('env-rotating', 'v1');
  });
  afterAll(async () => {
    await h?.close();
  });

  /** What a real `sh` holds after `set -a; . FILE; set +a`, variable by variable. */
  const sourced = async (file: string, name: string): Promise<string> =>
    (await run('sh', ['-c', `set -a; . "$1"; set +a; printf '%s' "$${name}"`, 'sh', file], { encoding: 'buffer' })).stdout.toString('utf8');

  it('sh reads back every file\'s exact bytes: quotes, newlines, $, backticks, unicode; names derived or set by envName', async () => {
    const m = await mount(
      [
        { objectName: 'env-tricky' },
        { objectName: 'db-user', objectAlias: 'conf/db.user' },
        { objectName: 'env-json', envName: '-', jmesPath: [{ path: 'password', objectAlias: 'pw', envName: 'DB_PASSWORD' }, { path: 'port', objectAlias: '5-port' }] },
      ],
      { envFile: 'app.env' },
    );
    await m.publish();
    const file = m.path('app.env');
    const env = (await m.read('app.env')).toString();
    expect([...env.matchAll(/^([A-Z0-9_]+)='/gm)].map((l) => l[1])).toEqual(['ENV_TRICKY', 'CONF_DB_USER', 'DB_PASSWORD', '_5_PORT']);
    expect(await sourced(file, 'ENV_TRICKY')).toBe((await m.read('env-tricky')).toString());
    expect(await sourced(file, 'ENV_TRICKY')).toBe(tricky);
    expect(await sourced(file, 'CONF_DB_USER')).toBe((await m.read('conf/db.user')).toString());
    expect(await sourced(file, 'DB_PASSWORD')).toBe("a'b'c");
    expect(await sourced(file, '_5_PORT')).toBe('5432');
    // `set -a` exports them: a child process sees them too.
    const { stdout } = await run('sh', ['-c', 'set -a; . "$1"; set +a; exec env', 'sh', file]);
    expect(stdout).toContain('DB_PASSWORD=a\'b\'c\n');
    expect(env).not.toContain('ENV_JSON=');
    await m.done();
  });

  it('the env file is never more readable than the files it copies, and is rewritten on rotation', async () => {
    const m = await mount([{ objectName: 'env-rotating', filePermission: '0640' }, { objectName: 'db-user', filePermission: '0604' }], { envFile: 'env/app.env' });
    await m.publish();
    expect(await m.mode('env/app.env')).toBe(0o600);
    expect(await sourced(m.path('env/app.env'), 'ENV_ROTATING')).toBe('v1');
    h.vault.store.setSecret('env-rotating', 'v2');
    await wait(1100);
    await m.publish();
    expect(await sourced(m.path('env/app.env'), 'ENV_ROTATING')).toBe('v2');
    await m.done();
  });

  it('a value with NUL is refused naming the object (envName "-" leaves it out); bad or clashing names are refused', async () => {
    let err = await rpcError((await mount([{ objectName: 'env-nul' }], { envFile: 'app.env' })).publish());
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toMatch(/parameter envFile "app\.env": secret "env-nul" \(file "env-nul"\) holds a NUL byte/);
    const ok = await mount([{ objectName: 'env-nul', envName: '-' }, { objectName: 'db-user' }], { envFile: 'app.env' });
    await ok.publish();
    expect((await ok.read('app.env')).toString()).toBe("DB_USER='app'\n");
    await ok.done();

    err = await rpcError((await mount([{ objectName: 'db-user', envName: '1st' }], { envFile: 'app.env' })).publish());
    expect(err.details).toMatch(/objects\[0\] \(db-user\): field envName "1st" must be letters, digits and _/);
    err = await rpcError((await mount([{ objectName: 'db-user' }, { objectName: 'env-tricky', envName: 'DB_USER' }], { envFile: 'app.env' })).publish());
    expect(err.details).toMatch(/secret "env-tricky" \(file "env-tricky"\) and secret "db-user" \(file "db-user"\) both set variable DB_USER/);
    err = await rpcError((await mount([{ objectName: 'db-user', objectAlias: 'app.env' }], { envFile: 'app.env' })).publish());
    expect(err.details).toMatch(/file name "app\.env" is produced twice \(secret\/db-user and parameter envFile\)/);
    err = await rpcError((await mount([{ objectName: 'db-user' }], { envFile: '../x.env' })).publish());
    expect(err.details).toMatch(/parameter envFile must not contain a '\.\.' segment/);
  });
});

describe('the certificate flags as the Azure provider spells them', () => {
  const config = (args: string[]) => {
    const cmd = driverCommand();
    cmd.parseOptions(args);
    return buildDriverConfig({ ...(cmd.opts() as DriverFlags), standalone: '/tmp', nodeId: 'n' }, {});
  };

  it('defaults: no separate files, the chain constructed; bare, =true and =false as Go flags take them', () => {
    expect(config([])).toMatchObject({ writeCertAndKeyInSeparateFiles: false, constructPEMChain: true });
    expect(config(['--write-cert-and-key-in-separate-files', '--construct-pem-chain=false'])).toMatchObject({ writeCertAndKeyInSeparateFiles: true, constructPEMChain: false });
    expect(config(['--write-cert-and-key-in-separate-files=true', '--construct-pem-chain=true'])).toMatchObject({ writeCertAndKeyInSeparateFiles: true, constructPEMChain: true });
    expect(() => config(['--construct-pem-chain=maybe'])).toThrow(/--construct-pem-chain: "maybe" must be true or false/);
  });
});

describe('field results are bounded while they are written', () => {
  it('an expression that doubles the document 30 times is refused at the byte limit, at once', () => {
    const doc = JSON.stringify({ db: { password: 'x'.repeat(1000) } });
    const started = Date.now();
    const [result] = extractSecretFields(doc, [Array(30).fill('[@, @]').join(' | ')], 128 * 1024) ?? [];
    expect(result).toEqual({ ok: false, problem: 'selects more than 131072 bytes' });
    expect(Date.now() - started).toBeLessThan(1000);
  });
});
