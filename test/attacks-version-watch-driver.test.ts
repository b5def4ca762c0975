import { execFile } from 'node:child_process';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { constants } from 'node:fs';
import { link, mkdtemp, open, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startDevVault } from '../src/devvault/server.js';
import type { DevVault } from '../src/devvault/server.js';
import { parseSeed } from '../src/devvault/seed.js';
import type { EphemeralVolume } from '../src/driver/kubelet-volume.js';
import { MAX_STATUS_BYTES, VOV_API_VERSION, VOV_KIND, VOV_PLURAL, versionsObjectName } from '../src/version-watch/versions-resource.js';
import type { VersionsStatus } from '../src/version-watch/versions-resource.js';
import { certificateChain, pfx } from './support/certs.js';
import { CLIENT_ID, isRoot, SECRET_VALUES, startHarness, TEST_SEED } from './support/harness.js';
import type { Harness } from './support/harness.js';
import { KubeApiDouble } from './support/kube-api-double.js';
import { CsiClient } from '../src/driver/client.js';
import { startDriver } from '../src/driver/server.js';
import { createLogger } from '../src/log.js';
import { until } from './support/version-watch-fixture.js';

const run = promisify(execFile);
const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));
const NAMESPACE = 'podvault';
/** A client that may read every object of the vaults (classes below name objects the seed's app client may not). */
const ALL_ID = 'vw-attack-app';
const ALL_SECRET = 'vw-attack-secret-0001';
/** What a host file planted into a volume holds: it must never appear in any volume. */
const HOST_MARK = 'HOST-FILE-Qx93-must-never-be-mounted';
const VAULT_B_PASSWORD = 'pw-in-vault-b-Lm40';
/** Refetches 100 flips of a published version over ~3 s may cause (see the flapping test). */
const MAX_WATCH_REFETCHES = 10;

const chain = certificateChain();
const pem = (der: Buffer): string => new X509Certificate(der).toString();
const keyPem = createPrivateKey(chain.leaf.keyPem).export({ type: 'pkcs8', format: 'pem' }).toString();
const bundle = pfx(chain.leaf.key, [chain.root, chain.leaf, chain.intermediate]);
const pemStored = `${keyPem}${pem(chain.root.der)}${pem(chain.leaf.der)}`;

type Versions = Partial<Record<'secrets' | 'keys' | 'certificates', Record<string, string>>>;
/** Every file a pod sees in its volume (through the visible links), path -> bytes and mode. */
type Snapshot = Record<string, { bytes: string; mode: number }>;

/**
 * Attacks on the driver side of the version watch (--version-watch): a rotation that keeps
 * objects whose mounted version the VaultObjectVersions vouch is current reads their bytes back
 * from the volume's own tmpfs. A volume tampered with (as root: a pod cannot write its tmpfs), a
 * class edited between rotations, forged or hostile VaultObjectVersions, a lying watcher: none may
 * make a volume hold bytes other than what a fresh publish of its class gives (or, for a lying
 * "current", the bytes of the version it mounted), nor make root follow a link, nor stop the
 * driver serving.
 */
describe.skipIf(!isRoot)('attacks on the version watch, driver side', () => {
  let api: KubeApiDouble;
  /** Rotates every second: a republish past it rotates (`rotate`). */
  let h: Harness;
  /** Rotates every 10 minutes: only the watch's events rotate its volumes. */
  let hw: Harness;
  /** A second vault, seeded like h's (so its version ids are the same: dev-vault's are deterministic). */
  let b: DevVault;
  let hostDir: string;

  const valueGets = (on: Harness): string[] => on.vault.vaultLog.filter((r) => (r.clientId === CLIENT_ID || r.clientId === ALL_ID) && /^\/(secrets|keys|certificates)\//.test(r.path) && !r.path.endsWith('/versions')).map((r) => r.path);
  const statusOf = (on: Harness | DevVault, versions: Versions, observedAt = new Date().toISOString()): VersionsStatus => {
    const now = new Date().toISOString();
    const entries = (m: Record<string, string> = {}) => Object.fromEntries(Object.entries(m).map(([n, v]) => [n, { version: v, since: now }]));
    return {
      vaultUri: 'vault' in on ? on.vault.url : on.url,
      intervalSeconds: 60,
      observedAt,
      versions: { secrets: entries(versions.secrets), keys: entries(versions.keys), certificates: entries(versions.certificates) },
      unavailable: { secrets: {}, keys: {}, certificates: {} },
    };
  };
  const putVersions = (on: Harness | DevVault, versions: Versions, options: { namespace?: string; name?: string; status?: unknown } = {}): void => {
    const url = 'vault' in on ? on.vault.url : on.url;
    api.put(VOV_PLURAL, { apiVersion: VOV_API_VERSION, kind: VOV_KIND, metadata: { name: options.name ?? versionsObjectName(url), namespace: options.namespace ?? NAMESPACE }, status: options.status ?? statusOf(on, versions) });
  };
  /** The watch vouches that every object of the vault is at its current version (the truth). */
  const vouchAll = (on: Harness | DevVault): void => {
    const store = 'vault' in on ? on.vault.store : on.store;
    const current = (kind: 'secrets' | 'keys' | 'certificates') => Object.fromEntries(store.names(kind).map((n) => [n, store.get(kind, n)?.version ?? '']));
    putVersions(on, { secrets: current('secrets'), keys: current('keys'), certificates: current('certificates') });
  };
  const putClass = (name: string, objects: readonly object[], parameters: Record<string, string> = {}, on = h): void => {
    api.put('secretproviderclasses', {
      apiVersion: 'secrets-store.csi.x-k8s.io/v1',
      kind: 'SecretProviderClass',
      metadata: { name, namespace: 'default' },
      spec: { provider: 'azure', parameters: { vaultUri: on.vault.url, tenantId: on.vault.tenantId, objects: stringify({ array: objects.map((o) => stringify({ objectType: 'secret', ...o })) }), ...parameters } },
    });
  };
  /** Every volume a test published: unpublished after it even when it fails, so no other volume's rotations reach the vault log. */
  const published: Array<[Harness, EphemeralVolume]> = [];
  const volumeOf = async (className: string, on = h): Promise<EphemeralVolume> => {
    const v = await on.volume({ className, secrets: { clientid: ALL_ID, clientsecret: ALL_SECRET } });
    published.push([on, v]);
    return v;
  };
  /** Past the rotation interval, the kubelet's republish: the rotation runs inside it. */
  const rotate = async (v: EphemeralVolume, on = h): Promise<void> => {
    await wait(1100);
    await on.client.publish(v.request);
  };
  const unpublish = (v: EphemeralVolume, on = h) => on.client.unpublish({ volumeId: v.volumeId, targetPath: v.targetPath });
  const snapshot = async (dir: string, prefix = ''): Promise<Snapshot> => {
    const out: Snapshot = {};
    for (const name of (await readdir(join(dir, prefix))).sort()) {
      if (prefix === '' && name.startsWith('..')) continue;
      const path = prefix ? `${prefix}/${name}` : name;
      const st = await stat(join(dir, path));
      if (st.isDirectory()) Object.assign(out, await snapshot(dir, path));
      else out[path] = { bytes: (await readFile(join(dir, path))).toString('base64'), mode: st.mode & 0o7777 };
    }
    return out;
  };
  /** What a second pod's first publish of the class mounts. */
  const fresh = async (className: string, on = h): Promise<Snapshot> => {
    const v = await volumeOf(className, on);
    await on.client.publish(v.request);
    try {
      return await snapshot(v.targetPath);
    } finally {
      await unpublish(v, on);
    }
  };
  /** As root, what no pod can do: make the volume's tmpfs writable, change its data directory, make it read-only again. */
  const tamper = async (v: EphemeralVolume, change: (data: string) => Promise<void>): Promise<void> => {
    await run('mount', ['-o', 'remount,rw,nosuid,nodev,noexec', v.targetPath]);
    try {
      await change(join(v.targetPath, '..data'));
    } finally {
      await run('mount', ['-o', 'remount,ro,nosuid,nodev,noexec', v.targetPath]);
    }
  };
  const text = async (v: EphemeralVolume, file: string): Promise<string> => readFile(join(v.targetPath, file), 'utf8');
  const noHostMark = async (v: EphemeralVolume): Promise<void> => {
    for (const f of Object.values(await snapshot(v.targetPath))) expect(Buffer.from(f.bytes, 'base64').toString('latin1')).not.toContain(HOST_MARK);
  };
  /** The driver still serves: a new pod's volume is published and holds its value. */
  const stillServes = async (on = h, boundMs = 5000): Promise<void> => {
    putClass('still-serves', [{ objectName: 'db-user' }], {}, on);
    await wait(100);
    const started = Date.now();
    const files = await fresh('still-serves', on);
    expect(Buffer.from(files['db-user']?.bytes ?? '', 'base64').toString()).toBe('app');
    expect(Date.now() - started).toBeLessThan(boundMs);
  };
  /** How long each `stillServes` took while `burst` ran, one after another until it ended. */
  const latenciesDuring = async (burst: () => Promise<void>, on = h, boundMs?: number): Promise<number[]> => {
    let done = false;
    const running = burst().finally(() => (done = true));
    const latencies: number[] = [];
    while (!done) {
      const started = Date.now();
      await stillServes(on, boundMs);
      latencies.push(Date.now() - started);
    }
    await running;
    return latencies;
  };

  beforeAll(async () => {
    hostDir = await mkdtemp(join(tmpdir(), 'vw-attack-host-'));
    await writeFile(join(hostDir, 'secret.txt'), HOST_MARK);
    await writeFile(join(hostDir, '0'), HOST_MARK);
    api = await new KubeApiDouble().start();
    const kubeconfig = await api.writeKubeconfig();
    b = await startDevVault({ seed: parseSeed(TEST_SEED.replace(SECRET_VALUES.dbPassword, VAULT_B_PASSWORD), 'vault b') });
    [h, hw] = await Promise.all([
      startHarness({ standalone: undefined, kubeconfig, rotationInterval: '1s', versionWatch: true }, { extraVaults: [b] }),
      startHarness({ standalone: undefined, kubeconfig, rotationInterval: '10m', versionWatch: true }),
    ]);
    b.trustTokensOf(h.vault);
    for (const store of [h.vault.store, hw.vault.store, b.store]) {
      store.putClient({ clientId: ALL_ID, clientSecret: ALL_SECRET, managedIdentity: false, read: ['*'] });
      store.putCertificate('tls-pfx', { cer: chain.leaf.der, secretValue: bundle.toString('base64'), contentType: 'application/x-pkcs12' });
      store.putCertificate('tls-pem', { cer: chain.leaf.der, secretValue: pemStored, contentType: 'application/x-pem-file' });
      store.setSecret('conf', JSON.stringify({ user: 'conf-user', pass: 'conf-pass' }));
      for (const v of ['hist-0', 'hist-1', 'hist-2']) store.setSecret('hist', v);
      store.setSecret('constructor', 'value-of-constructor');
    }
    vouchAll(h);
    vouchAll(hw);
    vouchAll(b);
  });
  afterEach(async () => {
    for (const [on, v] of published.splice(0)) await on.client.unpublish({ volumeId: v.volumeId, targetPath: v.targetPath }).catch(() => undefined);
  });
  afterAll(async () => {
    await h?.close();
    await hw?.close();
    await b?.close();
    await api?.close();
    if (hostDir) await rm(hostDir, { recursive: true, force: true });
  });

  describe('1. reading a volume back cannot be turned into reading anything else', () => {
    /**
     * Each tampering of one file of a mounted volume, then a rotation with the watch vouching
     * every version is current: the tampered object is fetched again from the vault (its path in
     * the vault log) and the volume holds exactly what a fresh publish gives; the host's file
     * never appears; the driver serves on.
     */
    const cases: Array<{ name: string; change: (data: string) => Promise<void> }> = [
      { name: 'a symlink to a host file', change: async (data) => { await rm(join(data, 'db-password')); await symlink(join(hostDir, 'secret.txt'), join(data, 'db-password')); } },
      { name: 'a FIFO', change: async (data) => { await rm(join(data, 'db-password')); await run('mkfifo', [join(data, 'db-password')]); } },
      { name: 'a file larger than the volume may hold', change: async (data) => { await rm(join(data, 'db-password')); await writeFile(join(data, 'db-password'), Buffer.alloc(3 * 1024 * 1024, 0x41)); } },
      { name: 'a hard link to another object\'s file of the same volume', change: async (data) => { await rm(join(data, 'db-password')); await link(join(data, 'db-user'), join(data, 'db-password')); } },
      { name: 'its bytes overwritten in place', change: async (data) => { await writeFile(join(data, 'db-password'), 'tampered-in-place'); } },
    ];
    for (const c of cases) {
      it(`${c.name} in ..data: refetched from the vault, never read`, async () => {
        const cls = `t1-${cases.indexOf(c)}`;
        putClass(cls, [{ objectName: 'db-password' }, { objectName: 'db-user' }]);
        vouchAll(h);
        const v = await volumeOf(cls);
        await h.client.publish(v.request);
        const expected = await snapshot(v.targetPath);
        await tamper(v, c.change);
        const before = valueGets(h).length;
        await rotate(v);
        expect(valueGets(h).slice(before)).toEqual(['/secrets/db-password/']);
        expect(await snapshot(v.targetPath)).toEqual(expected);
        expect(await text(v, 'db-password')).toBe(SECRET_VALUES.dbPassword);
        await noHostMark(v);
        // The next rotation keeps both again: the volume is healed, and nothing is fetched.
        const healed = valueGets(h).length;
        await rotate(v);
        expect(valueGets(h).length).toBe(healed);
        await unpublish(v);
        await stillServes();
      });
    }

    it('a directory of the volume swapped for a symlink (to another object\'s directory, or to a host directory): never followed', async () => {
      // objectVersionHistory makes directories: hist/0.. and pw/0 (an alias with a slash).
      putClass('t1-dir', [{ objectName: 'hist', objectVersionHistory: '2' }, { objectName: 'db-password', objectAlias: 'pw/0' }]);
      vouchAll(h);
      const v = await volumeOf('t1-dir');
      await h.client.publish(v.request);
      const expected = await snapshot(v.targetPath);
      expect(Object.keys(expected).sort()).toEqual(['hist/0', 'hist/1', 'pw/0']);
      // hist -> pw: reading hist/0 back through it would give db-password's bytes as hist's.
      await tamper(v, async (data) => {
        await rm(join(data, 'hist'), { recursive: true });
        await symlink('pw', join(data, 'hist'));
      });
      await rotate(v);
      expect(await snapshot(v.targetPath)).toEqual(expected);
      expect(await text(v, 'hist/0')).toBe('hist-2');
      // hist -> a host directory holding a file `0`.
      await tamper(v, async (data) => {
        await rm(join(data, 'hist'), { recursive: true });
        await symlink(hostDir, join(data, 'hist'));
      });
      await rotate(v);
      expect(await snapshot(v.targetPath)).toEqual(expected);
      await noHostMark(v);
      // hist -> a host directory whose `0` is a FIFO: root must not even open it (a link to /dev
      // would have it open a device node, past the tmpfs's nodev). A writer blocked on the FIFO
      // wakes when anyone opens its read side.
      const fifoDir = await mkdtemp(join(tmpdir(), 'vw-attack-fifo-'));
      const fifo = join(fifoDir, '0');
      await run('mkfifo', [fifo]);
      let opened = false;
      const writer = open(fifo, constants.O_WRONLY).then((w) => {
        opened = true;
        return w;
      });
      try {
        await tamper(v, async (data) => {
          await rm(join(data, 'hist'), { recursive: true });
          await symlink(fifoDir, join(data, 'hist'));
        });
        await rotate(v);
        await wait(200);
        expect(opened).toBe(false);
        expect(await snapshot(v.targetPath)).toEqual(expected);
      } finally {
        const reader = await open(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
        await (await writer).close();
        await reader.close();
        await rm(fifoDir, { recursive: true, force: true });
      }
      await unpublish(v);
      await stillServes();
    });

    it('a pinned object\'s file tampered with: refetched at its pinned version', async () => {
      const pinned = h.vault.store.list('secrets', 'api-token')?.[0]?.version ?? '';
      putClass('t1-pinned', [{ objectName: 'api-token', objectVersion: pinned }]);
      const v = await volumeOf('t1-pinned');
      await h.client.publish(v.request);
      expect(await text(v, 'api-token')).toBe('tok-old');
      await tamper(v, (data) => writeFile(join(data, 'api-token'), 'tampered-pinned'));
      const before = valueGets(h).length;
      await rotate(v);
      expect(valueGets(h).slice(before)).toEqual([`/secrets/api-token/${pinned}`]);
      expect(await text(v, 'api-token')).toBe('tok-old');
      await unpublish(v);
    });
  });

  describe('2. a class edited between rotations: the files are those of a fresh publish of the edited class', () => {
    const edits: Array<{ name: string; from: object[]; to: object[]; parameters?: [Record<string, string>, Record<string, string>] }> = [
      { name: 'two objects swap their objectAlias', from: [{ objectName: 'db-password', objectAlias: 'one' }, { objectName: 'db-user', objectAlias: 'two' }], to: [{ objectName: 'db-password', objectAlias: 'two' }, { objectName: 'db-user', objectAlias: 'one' }] },
      { name: 'an object takes another\'s file name', from: [{ objectName: 'db-password', objectAlias: 'x' }, { objectName: 'db-user' }], to: [{ objectName: 'db-password', objectAlias: 'db-user' }, { objectName: 'db-user', objectAlias: 'y' }] },
      { name: 'objectType of the same name (secret -> cert)', from: [{ objectName: 'tls-pem', objectAlias: 'tls' }], to: [{ objectName: 'tls-pem', objectType: 'cert', objectAlias: 'tls' }] },
      { name: 'objectEncoding (utf-8 -> hex)', from: [{ objectName: 'hexed' }], to: [{ objectName: 'hexed', objectEncoding: 'hex' }] },
      { name: 'objectFormat of a PKCS#12 certificate-backed secret (pem -> pfx)', from: [{ objectName: 'tls-pfx' }], to: [{ objectName: 'tls-pfx', objectFormat: 'pfx' }] },
      { name: 'jmesPath fields added', from: [{ objectName: 'conf' }], to: [{ objectName: 'conf', jmesPath: [{ path: 'user', objectAlias: 'conf-user' }] }] },
      { name: 'a jmesPath field\'s path changed, its file name kept', from: [{ objectName: 'conf', jmesPath: [{ path: 'user', objectAlias: 'field' }] }], to: [{ objectName: 'conf', jmesPath: [{ path: 'pass', objectAlias: 'field' }] }] },
      { name: 'writeCertAndKeyInSeparateFiles turned on', from: [{ objectName: 'tls-pem' }], to: [{ objectName: 'tls-pem' }], parameters: [{}, { writeCertAndKeyInSeparateFiles: 'true' }] },
      { name: 'constructPEMChain turned off', from: [{ objectName: 'tls-pfx' }], to: [{ objectName: 'tls-pfx' }], parameters: [{}, { constructPEMChain: 'false' }] },
      { name: 'filePermission changed', from: [{ objectName: 'db-password' }], to: [{ objectName: 'db-password', filePermission: '0600' }] },
      { name: 'objectVersionHistory raised (2 -> 3)', from: [{ objectName: 'hist', objectVersionHistory: '2' }], to: [{ objectName: 'hist', objectVersionHistory: '3' }] },
      { name: 'the class\'s vaultUri moved to another vault whose version ids are the same', from: [{ objectName: 'db-password' }], to: [{ objectName: 'db-password' }], parameters: [{}, { vaultUri: '' }] },
      { name: 'an object pinned to a version id moved to another vault (where that id names another value)', from: [{ objectName: 'db-password', objectVersion: '' }], to: [{ objectName: 'db-password', objectVersion: '' }], parameters: [{}, { vaultUri: '' }] },
    ];
    for (const e of edits) {
      it(e.name, async () => {
        const cls = `t2-${edits.indexOf(e)}`;
        const [p0, p1] = e.parameters ?? [{}, {}];
        // The first version's id: the same in both vaults (dev-vault's ids are deterministic), its value not.
        const firstId = h.vault.store.list('secrets', 'db-password')?.[0]?.version ?? '';
        const pin = (objects: object[]) => objects.map((o) => ('objectVersion' in o ? { ...o, objectVersion: firstId } : o));
        const vaultB: Record<string, string> = p1.vaultUri === '' ? { vaultUri: b.url } : {};
        putClass(cls, pin(e.from), p0);
        vouchAll(h);
        vouchAll(b);
        const v = await volumeOf(cls);
        await h.client.publish(v.request);
        putClass(cls, pin(e.to), { ...p1, ...vaultB });
        await wait(300);
        await rotate(v);
        const after = await snapshot(v.targetPath);
        expect(after).toEqual(await fresh(cls));
        if (vaultB.vaultUri) expect(Object.values(after).map((f) => Buffer.from(f.bytes, 'base64').toString())).not.toContain(SECRET_VALUES.dbPassword);
        // And the rotation after it keeps what it now holds.
        await rotate(v);
        expect(await snapshot(v.targetPath)).toEqual(after);
        await unpublish(v);
      });
    }

    it('an env file of kept objects is the one a fresh publish writes', async () => {
      putClass('t2-env', [{ objectName: 'db-password', envName: 'PW' }, { objectName: 'db-user' }], { envFile: 'app.env' });
      vouchAll(h);
      const v = await volumeOf('t2-env');
      await h.client.publish(v.request);
      const before = valueGets(h).length;
      await rotate(v);
      expect(valueGets(h).length).toBe(before);
      expect(await snapshot(v.targetPath)).toEqual(await fresh('t2-env'));
      putClass('t2-env', [{ objectName: 'db-password', envName: 'PASSWORD' }, { objectName: 'db-user', envName: '-' }], { envFile: 'app.env' });
      await wait(300);
      await rotate(v);
      expect(await snapshot(v.targetPath)).toEqual(await fresh('t2-env'));
      await unpublish(v);
    });
  });

  describe('3. forged or hostile VaultObjectVersions', () => {
    /** A volume of db-password and db-user on h, its versions then published by `publish`; what the next rotation fetched. */
    const fetchedAfter = async (cls: string, publish: () => void): Promise<string[]> => {
      putClass(cls, [{ objectName: 'db-password' }, { objectName: 'db-user' }]);
      vouchAll(h);
      const v = await volumeOf(cls);
      await h.client.publish(v.request);
      publish();
      await wait(300);
      const before = valueGets(h).length;
      await rotate(v);
      const fetched = valueGets(h).slice(before).sort();
      expect(await text(v, 'db-password')).toBe(SECRET_VALUES.dbPassword);
      await unpublish(v);
      vouchAll(h);
      return fetched;
    };
    const mountedVersions = () => ({ secrets: { 'db-password': h.vault.store.get('secrets', 'db-password')?.version ?? '', 'db-user': h.vault.store.get('secrets', 'db-user')?.version ?? '' } });
    const both = ['/secrets/db-password/', '/secrets/db-user/'];

    it('a control: the truth vouched, nothing is fetched', async () => {
      expect(await fetchedAfter('t3-control', () => putVersions(h, mountedVersions()))).toEqual([]);
    });

    it('the right object in another namespace than the watcher\'s is ignored', async () => {
      expect(
        await fetchedAfter('t3-ns', () => {
          api.delete(VOV_PLURAL, VOV_API_VERSION, NAMESPACE, versionsObjectName(h.vault.url));
          putVersions(h, mountedVersions(), { namespace: 'default' });
        }),
      ).toEqual(both);
      api.delete(VOV_PLURAL, VOV_API_VERSION, 'default', versionsObjectName(h.vault.url));
    });

    it('an object named for the vault whose status.vaultUri is another vault is ignored', async () => {
      expect(await fetchedAfter('t3-uri', () => putVersions(h, mountedVersions(), { status: { ...statusOf(h, mountedVersions()), vaultUri: b.url } }))).toEqual(both);
    });

    it('an object named for another vault, vouching this vault\'s versions, is ignored', async () => {
      expect(
        await fetchedAfter('t3-name', () => {
          api.delete(VOV_PLURAL, VOV_API_VERSION, NAMESPACE, versionsObjectName(h.vault.url));
          putVersions(h, mountedVersions(), { name: versionsObjectName(b.url) });
        }),
      ).toEqual(both);
      vouchAll(b);
    });

    it('a status over MAX_STATUS_BYTES is not kept: rotations refetch, the driver serves', async () => {
      const big = { ...mountedVersions().secrets, ...Object.fromEntries(Array.from({ length: Math.ceil(MAX_STATUS_BYTES / 60) + 10 }, (_, i) => [`filler-${i}`, 'f'.repeat(32)])) };
      expect(await fetchedAfter('t3-big', () => putVersions(h, { secrets: big }))).toEqual(both);
      await stillServes();
    });

    it('malformed statuses: rotations refetch, the driver serves', async () => {
      const good = statusOf(h, mountedVersions());
      for (const status of [{ ...good, intervalSeconds: 'x' }, { ...good, versions: 'all of them' }, { ...good, versions: { secrets: { 'db-password': 'v' } } }, { ...good, observedAt: 'yesterday' }, { ...good, intervalSeconds: -1 }, null, 'text']) {
        expect(await fetchedAfter('t3-malformed', () => putVersions(h, {}, { status }))).toEqual(both);
      }
      await stillServes();
    });

    it('versions named __proto__ and constructor: no prototype is touched, an object named constructor is vouched as any other', async () => {
      const store = h.vault.store;
      putClass('t3-proto', [{ objectName: 'constructor' }, { objectName: 'db-user' }]);
      vouchAll(h);
      const v = await volumeOf('t3-proto');
      await h.client.publish(v.request);
      expect(await text(v, 'constructor')).toBe('value-of-constructor');
      const since = new Date().toISOString();
      const raw = `{"secrets":{"__proto__":{"version":"polluted","since":"${since}"},"constructor":{"version":"${store.get('secrets', 'constructor')?.version ?? ''}","since":"${since}"},"db-user":{"version":"${store.get('secrets', 'db-user')?.version ?? ''}","since":"${since}"}},"keys":{"__proto__":{"version":"x","since":"${since}"}},"certificates":{}}`;
      putVersions(h, {}, { status: { ...statusOf(h, {}), versions: JSON.parse(raw) as unknown, unavailable: JSON.parse('{"secrets":{"__proto__":"Forbidden"},"keys":{},"certificates":{}}') as unknown } });
      await wait(300);
      const before = valueGets(h).length;
      await rotate(v);
      expect(valueGets(h).slice(before)).toEqual([]);
      expect(({} as Record<string, unknown>).version).toBeUndefined();
      expect(await text(v, 'constructor')).toBe('value-of-constructor');
      await unpublish(v);
      vouchAll(h);
      await stillServes();
    });

    it('a lying "current" (the vault has a newer version) only delays it: the volume keeps its own mounted bytes, never another object\'s', async () => {
      putClass('t3-lie', [{ objectName: 'db-password' }, { objectName: 'db-user' }]);
      vouchAll(h);
      const v = await volumeOf('t3-lie');
      await h.client.publish(v.request);
      const mounted = mountedVersions();
      const next = h.vault.store.setSecret('db-password', 'pw-newer-than-the-watch-says');
      try {
        putVersions(h, mounted); // the lie: the old version is current
        await wait(300);
        await rotate(v);
        expect(await text(v, 'db-password')).toBe(SECRET_VALUES.dbPassword);
        expect(await text(v, 'db-user')).toBe('app');
        // The watch says db-password's current version is db-user's id: not what is mounted, so fetched (the real current one).
        putVersions(h, { secrets: { 'db-password': mounted.secrets['db-user'], 'db-user': mounted.secrets['db-user'] } });
        await wait(300);
        await rotate(v);
        expect(await text(v, 'db-password')).toBe('pw-newer-than-the-watch-says');
        expect(await text(v, 'db-user')).toBe('app');
        putVersions(h, { secrets: { 'db-password': next, 'db-user': mounted.secrets['db-user'] } });
      } finally {
        h.vault.store.setSecret('db-password', SECRET_VALUES.dbPassword);
        vouchAll(h);
      }
      await unpublish(v);
    });

    it('thousands of objects and updates in a burst: publishes stay prompt, no volume whose versions did not move rotates', async () => {
      putClass('t3-burst', [{ objectName: 'db-password' }, { objectName: 'db-user' }], {}, hw);
      vouchAll(hw);
      const v = await volumeOf('t3-burst', hw);
      await hw.client.publish(v.request);
      const before = valueGets(hw).length;
      const logsBefore = hw.logs.length;
      const latencies = await latenciesDuring(async () => {
        for (let i = 0; i < 3000; i++) {
          if (i % 3 === 0) vouchAll(hw); // the vault's own object, its versions unmoved
          else api.put(VOV_PLURAL, { apiVersion: VOV_API_VERSION, kind: VOV_KIND, metadata: { name: `burst-${i % 1500}`, namespace: NAMESPACE }, status: { ...statusOf(hw, { secrets: { [`s-${i}`]: 'a'.repeat(32) } }), vaultUri: `https://burst-${i % 1500}.vault.example` } });
          if (i % 50 === 0) await wait(1);
        }
      }, hw);
      await wait(500);
      expect(latencies.length).toBeGreaterThan(0);
      expect(Math.max(...latencies)).toBeLessThan(5000);
      // No rotation of the volume at all, and no value fetched for it.
      expect(hw.logs.slice(logsBefore).map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.volumeId === v.volumeId && l.trigger === 'watch')).toEqual([]);
      expect(valueGets(hw).slice(before).filter((p) => p !== '/secrets/db-user/')).toEqual([]);
      // The driver took the whole burst in: a version that moves now still reaches the volume on its event.
      const next = hw.vault.store.setSecret('db-password', 'pw-after-the-burst');
      try {
        const movedAt = Date.now();
        vouchAll(hw);
        await until('the moved version after the burst', async () => ((await text(v, 'db-password')) === 'pw-after-the-burst' ? true : undefined), 10_000);
        console.log(`burst: ${latencies.length} publishes during it, slowest ${Math.max(...latencies)} ms; a moved version ${Date.now() - movedAt} ms after it (${next.slice(0, 6)}…)`);
      } finally {
        hw.vault.store.setSecret('db-password', SECRET_VALUES.dbPassword);
        vouchAll(hw);
      }
      await unpublish(v, hw);
    });

    it('statuses near MAX_STATUS_BYTES rewritten in a burst: publishes stay prompt', async () => {
      const filler = Object.fromEntries(Array.from({ length: Math.floor((MAX_STATUS_BYTES - 4096) / 100) }, (_, i) => [`big-${String(i).padStart(6, '0')}`, 'b'.repeat(32)]));
      const bytes = JSON.stringify(statusOf(hw, { secrets: filler })).length;
      expect(bytes).toBeLessThan(MAX_STATUS_BYTES);
      const latencies = await latenciesDuring(async () => {
        for (let i = 0; i < 30; i++) {
          api.put(VOV_PLURAL, { apiVersion: VOV_API_VERSION, kind: VOV_KIND, metadata: { name: `big-${i % 6}`, namespace: NAMESPACE }, status: { ...statusOf(hw, { secrets: filler }), vaultUri: `https://big-${i % 6}.vault.example` } });
          await wait(10);
        }
      }, hw, 10_000);
      for (let i = 0; i < 6; i++) api.delete(VOV_PLURAL, VOV_API_VERSION, NAMESPACE, `big-${i}`);
      console.log(`big statuses: 30 writes of ${bytes} bytes; ${latencies.length} publishes during them, slowest ${Math.max(...latencies)} ms`);
      // 2.5-3.6 s measured on 2 shared cores (the API double, its JSON and the driver share one
      // thread here; each such event costs the driver ~30-40 ms of parse and schema check).
      expect(Math.max(...latencies)).toBeLessThan(10_000);
    });

    it('a published version the vault never confirms, flipped fast: the volume\'s refetches from the watch are bounded', async () => {
      putClass('t3-flap', [{ objectName: 'db-password' }], {}, hw);
      vouchAll(hw);
      const v = await volumeOf('t3-flap', hw);
      await hw.client.publish(v.request);
      const gets = () => valueGets(hw).filter((p) => p === '/secrets/db-password/').length;
      const before = gets();
      const started = Date.now();
      for (let i = 0; i < 100; i++) {
        putVersions(hw, { secrets: { 'db-password': `${i % 2 ? 'a' : 'b'}${'0'.repeat(31)}` } });
        await wait(20);
      }
      // A real move right after the flips (inside the spacing) is delayed, not lost.
      hw.vault.store.setSecret('db-password', 'pw-moved-after-the-flips');
      const movedAt = Date.now();
      try {
        vouchAll(hw);
        await until('the real move after the flips', async () => ((await text(v, 'db-password')) === 'pw-moved-after-the-flips' ? true : undefined), 5000);
        const refetches = gets() - before;
        console.log(`flapping: 100 updates in ${movedAt - started} ms made ${refetches} refetches of the volume's object; a real move then arrived ${Date.now() - movedAt} ms later`);
        expect(refetches).toBeLessThanOrEqual(MAX_WATCH_REFETCHES);
      } finally {
        hw.vault.store.setSecret('db-password', SECRET_VALUES.dbPassword);
        vouchAll(hw);
      }
      await unpublish(v, hw);
    });
  });

  it('no value, planted byte or host file reached the drivers\' logs', () => {
    const all = [...h.logs, ...hw.logs].join('\n');
    for (const value of [SECRET_VALUES.dbPassword, SECRET_VALUES.apiToken, VAULT_B_PASSWORD, HOST_MARK, 'tampered-in-place', 'conf-pass', 'value-of-constructor', 'pw-newer-than-the-watch-says']) expect(all).not.toContain(value);
  });

  describe('4. two pods of one class on one node: each reuse reads only its own volume', () => {
    it('tampering with pod A\'s volume changes nothing for pod B, and the reverse', async () => {
      putClass('t4', [{ objectName: 'db-password' }, { objectName: 'db-user' }]);
      vouchAll(h);
      const [a, bv] = [await volumeOf('t4'), await volumeOf('t4')];
      await h.client.publish(a.request);
      await h.client.publish(bv.request);
      const expected = await snapshot(a.targetPath);
      for (const [tampered, other] of [[a, bv], [bv, a]] as const) {
        await tamper(tampered, async (data) => {
          await writeFile(join(data, 'db-user'), 'tampered-user');
          await rm(join(data, 'db-password'));
          await symlink(join(hostDir, 'secret.txt'), join(data, 'db-password'));
        });
        // Both rotate (the republishes, or the 1 s timer first): only the tampered one fetches, both its objects.
        const before = valueGets(h).length;
        await wait(1100);
        await h.client.publish(other.request);
        await h.client.publish(tampered.request);
        expect(valueGets(h).slice(before).sort()).toEqual(['/secrets/db-password/', '/secrets/db-user/']);
        expect(await snapshot(other.targetPath)).toEqual(expected);
        expect(await snapshot(tampered.targetPath)).toEqual(expected);
        await noHostMark(tampered);
      }
      await unpublish(a);
      await unpublish(bv);
    });
  });

  describe('5. other reuse paths', () => {
    it('objectVersionHistory with the newest version vouched: its tampered files are refetched at their versions, no listing is needed to heal', async () => {
      putClass('t5-hist', [{ objectName: 'hist', objectVersionHistory: '3' }]);
      vouchAll(h);
      const v = await volumeOf('t5-hist');
      await h.client.publish(v.request);
      const expected = await snapshot(v.targetPath);
      expect(Object.keys(expected)).toEqual(['hist/0', 'hist/1', 'hist/2']);
      await tamper(v, async (data) => {
        await writeFile(join(data, 'hist/1'), 'tampered-history');
      });
      await rotate(v);
      expect(await snapshot(v.targetPath)).toEqual(expected);
      await unpublish(v);
    });

    it('a volume recovered after a restart (--state-dir) keeps nothing on its first rotation: what it holds was not written by this process', async () => {
      const stateDir = await mkdtemp('/dev/shm/vw-attack-state-');
      const config = { ...h.config, stateDir, endpoint: `unix://${join(stateDir, 'csi.sock')}` };
      const logs: string[] = [];
      const start = async () => {
        const driver = await startDriver({ config, log: createLogger({ level: 'debug', destination: { write: (line: string) => void logs.push(line) } }) });
        return { driver, client: new CsiClient(config.endpoint) };
      };
      putClass('t5-restart', [{ objectName: 'db-password' }, { objectName: 'db-user' }]);
      vouchAll(h);
      let d = await start();
      const v = await volumeOf('t5-restart');
      try {
        await d.client.publish(v.request);
        const expected = await snapshot(v.targetPath);
        await tamper(v, (data) => writeFile(join(data, 'db-user'), 'tampered-before-the-restart'));
        d.client.close();
        await d.driver.stop(1000);
        d = await start();
        const before = valueGets(h).length;
        await wait(1100);
        await d.client.publish(v.request);
        expect(valueGets(h).slice(before).sort()).toEqual(['/secrets/db-password/', '/secrets/db-user/']);
        expect(await snapshot(v.targetPath)).toEqual(expected);
        // From then on it keeps them again.
        const kept = valueGets(h).length;
        await wait(1100);
        await d.client.publish(v.request);
        expect(valueGets(h).length).toBe(kept);
        await d.client.unpublish({ volumeId: v.volumeId, targetPath: v.targetPath });
        for (const value of [SECRET_VALUES.dbPassword, 'tampered-before-the-restart']) expect(logs.join('\n')).not.toContain(value);
      } finally {
        d.client.close();
        await d.driver.stop(1000);
        await rm(stateDir, { recursive: true, force: true });
      }
    });

    it('a template reading kept objects renders as a fresh publish does', async () => {
      putClass('t5-tmpl', [{ objectName: 'db-password' }, { objectName: 'db-user' }, { objectType: 'template', objectName: 'dsn', objectAlias: 'dsn.txt', template: 'user={{ secret "db-user" }} pw={{ secret "db-password" }}' }]);
      vouchAll(h);
      const v = await volumeOf('t5-tmpl');
      await h.client.publish(v.request);
      expect(await text(v, 'dsn.txt')).toBe(`user=app pw=${SECRET_VALUES.dbPassword}`);
      await tamper(v, (data) => writeFile(join(data, 'db-user'), 'tampered-user'));
      await rotate(v);
      expect(await snapshot(v.targetPath)).toEqual(await fresh('t5-tmpl'));
      await unpublish(v);
    });
  });
});
