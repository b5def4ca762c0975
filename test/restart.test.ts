import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDevVault } from '../src/devvault/server.js';
import type { DevVault } from '../src/devvault/server.js';
import { parseSeed } from '../src/devvault/seed.js';
import { CsiClient } from '../src/driver/client.js';
import { ephemeralVolume } from '../src/driver/kubelet-volume.js';
import { readMountInfo } from '../src/driver/mountinfo.js';
import { StateStore, stateFileName } from '../src/driver/state-store.js';
import { createLogger } from '../src/log.js';
import { packageRoot } from '../src/package-info.js';
import { CLIENT_ID, CLIENT_SECRET, isRoot, objectsParameter, TEST_SEED } from './support/harness.js';

const BIN = join(packageRoot, 'bin', 'podvault.js');
const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!isRoot)('restart recovery: kill -9 the driver during a publish and after mounts', () => {
  let vault: DevVault;
  let work: string;
  let driver: ChildProcess | undefined;
  /** The driver's log lines (JSON, --log-level warn) since it was last started. */
  let driverLog: string[] = [];
  const dirs = { classes: '', kubelet: '', state: '', socket: '' };

  beforeAll(async () => {
    vault = await startDevVault({ seed: parseSeed(TEST_SEED, 'test seed') });
    work = await mkdtemp('/dev/shm/podvault-restart-');
    Object.assign(dirs, { classes: join(work, 'classes'), kubelet: join(work, 'kubelet'), state: join(work, 'state'), socket: join(work, 'csi.sock') });
    await mkdir(dirs.classes);
    await mkdir(dirs.kubelet);
    await writeFile(join(work, 'ca.pem'), vault.caPem);
    const params = (name: string) => ({ usePodIdentity: 'true', vaultUri: vault.url, tenantId: vault.tenantId, objects: objectsParameter([{ objectName: name }]) });
    const docs = [
      { apiVersion: 'secrets-store.csi.x-k8s.io/v1', kind: 'SecretProviderClass', metadata: { name: 'user' }, spec: { provider: 'azure', parameters: params('db-user') } },
      { apiVersion: 'secrets-store.csi.x-k8s.io/v1', kind: 'SecretProviderClass', metadata: { name: 'password' }, spec: { provider: 'azure', parameters: params('db-password') } },
      // No identity mode: the volume's nodePublishSecretRef when it has one, else the pod's binding.
      { apiVersion: 'secrets-store.csi.x-k8s.io/v1', kind: 'SecretProviderClass', metadata: { name: 'by-secret-ref' }, spec: { provider: 'azure', parameters: { ...params('db-user'), usePodIdentity: '' } } },
      { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'sp' }, stringData: { clientSecret: CLIENT_SECRET } },
      { apiVersion: 'aadpodidentity.k8s.io/v1', kind: 'AzureIdentity', metadata: { name: 'app' }, spec: { type: 1, tenantID: vault.tenantId, clientID: CLIENT_ID, clientPassword: { name: 'sp', namespace: 'default' } } },
      { apiVersion: 'aadpodidentity.k8s.io/v1', kind: 'AzureIdentityBinding', metadata: { name: 'app' }, spec: { azureIdentity: 'app', selector: 'app' } },
      { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'pod-a', uid: 'uid-a', labels: { aadpodidbinding: 'app' } } },
      { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'pod-b', uid: 'uid-b', labels: { aadpodidbinding: 'app' } } },
    ];
    await writeFile(join(dirs.classes, 'all.yaml'), docs.map((d) => stringify(d)).join('---\n'));
  });
  afterAll(async () => {
    driver?.kill('SIGKILL');
    await vault?.close();
    for (const m of (await readMountInfo()).filter((e) => e.mountPoint.startsWith(`${work}/`)).reverse()) {
      await new Promise((r) => spawn('umount', [m.mountPoint]).on('exit', r));
    }
    await rm(work, { recursive: true, force: true });
  });

  /** Signal the driver process and wait for it to exit. */
  async function stopDriver(signal: 'SIGKILL' | 'SIGTERM'): Promise<void> {
    const exited = new Promise((r) => driver!.once('exit', r));
    driver!.kill(signal);
    await exited;
  }

  async function startDriver(): Promise<CsiClient> {
    const args = ['driver', '--standalone', dirs.classes, '--kubelet-dir', dirs.kubelet, '--state-dir', dirs.state, '--endpoint', `unix://${dirs.socket}`, '--rotation-interval', '1s',
      '--ca-file', join(work, 'ca.pem'), '--authority-host', vault.url, '--allow-vault-uri', vault.url, '--log-level', 'warn'];
    driver = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'ignore'], env: { ...process.env, NODE_NAME: 'node-r' } });
    driverLog = [];
    let partial = '';
    driver.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      driverLog.push(...lines);
    });
    const client = new CsiClient(`unix://${dirs.socket}`);
    for (let i = 0; i < 100; i++) {
      if (existsSync(dirs.socket) && (await client.probe().then((p) => p.ready?.value, () => false))) return client;
      await wait(100);
    }
    throw new Error('driver did not start');
  }

  const volume = async (pod: 'a' | 'b', className: string) => {
    const v = ephemeralVolume({ kubeletDir: dirs.kubelet, pod: { namespace: 'default', name: `pod-${pod}`, uid: `uid-${pod}`, serviceAccount: 'default' }, volumeName: 'secrets', className });
    await mkdir(join(v.targetPath, '..'), { recursive: true });
    return v;
  };
  const ourMounts = async () => (await readMountInfo()).filter((m) => m.mountPoint.startsWith(`${dirs.kubelet}/`) && m.source === 'podvault');

  it('keeps rotating and unpublishing what it mounted, and leaks no tmpfs', async () => {
    let client = await startDriver();
    const a = await volume('a', 'user');
    await client.publish(a.request);
    expect(await readdir(dirs.state)).toEqual([stateFileName(a.volumeId)]);
    expect(await readFile(join(dirs.state, stateFileName(a.volumeId)), 'utf8')).not.toContain(CLIENT_SECRET);

    // B's fetch hangs in the vault; the driver is killed mid-publish.
    vault.injectFault({ path: /^\/secrets\/db-password\//, delayMs: 3000, times: 1 });
    const b = await volume('b', 'password');
    const pending = client.publish(b.request).catch((err: unknown) => err);
    for (let i = 0; i < 100 && !vault.vaultLog.some((r) => r.outcome === 'delayed'); i++) await wait(20);
    await stopDriver('SIGKILL');
    expect(await pending).toMatchObject({ code: 14 }); // UNAVAILABLE: the kubelet will retry
    client.close();

    client = await startDriver();
    expect((await ourMounts()).map((m) => m.mountPoint)).toEqual([a.targetPath]);

    // A still rotates (on the driver's timer: nobody republishes it here)...
    vault.store.setSecret('db-user', 'after-restart');
    for (let i = 0; i < 50 && (await readFile(join(a.targetPath, 'db-user'), 'utf8')) !== 'after-restart'; i++) await wait(100);
    expect(await readFile(join(a.targetPath, 'db-user'), 'utf8')).toBe('after-restart');

    // ...the kubelet's retry of B succeeds, and both unpublish without leaving a mount behind.
    await client.publish(b.request);
    expect(await readFile(join(b.targetPath, 'db-password'), 'utf8')).toMatch(/never-log-me/);
    await client.unpublish({ volumeId: a.volumeId, targetPath: a.targetPath });
    await client.unpublish({ volumeId: b.volumeId, targetPath: b.targetPath });
    expect(await ourMounts()).toEqual([]);
    expect(await readdir(dirs.state)).toEqual([]);
    client.close();
    await stopDriver('SIGTERM');
  });

  it('a volume published with a nodePublishSecretRef is not rotated under another identity after a restart, only once the kubelet republishes it', async () => {
    let client = await startDriver();
    const a = await volume('a', 'by-secret-ref');
    await client.publish({ ...a.request, secrets: { clientid: CLIENT_ID, clientsecret: CLIENT_SECRET } });
    const stored = await readFile(join(dirs.state, stateFileName(a.volumeId)), 'utf8');
    expect(stored).toContain('"usesSecretRef":true');
    expect(stored).not.toContain(CLIENT_SECRET);
    await stopDriver('SIGKILL');
    client.close();

    client = await startDriver();
    vault.store.setSecret('db-user', 'after-restart-sp');
    const since = Date.now();
    await wait(2500); // the timer ticks every second with --rotation-interval 1s
    // Without its secret the resolver would fall back to the pod's binding: the timer leaves it alone.
    expect(vault.vaultLog.filter((r) => r.at >= since && r.path.startsWith('/secrets/db-user/'))).toEqual([]);
    expect(await readFile(join(a.targetPath, 'db-user'), 'utf8')).not.toBe('after-restart-sp');
    // The kubelet's republish brings the secret back, and the volume rotates as its own principal.
    await client.publish({ ...a.request, secrets: { clientid: CLIENT_ID, clientsecret: CLIENT_SECRET } });
    expect(await readFile(join(a.targetPath, 'db-user'), 'utf8')).toBe('after-restart-sp');
    await client.unpublish({ volumeId: a.volumeId, targetPath: a.targetPath });
    client.close();
    await stopDriver('SIGTERM');
  });

  it('a volume published with volume_mount_group keeps its group through timer rotations after a restart', async () => {
    let client = await startDriver();
    const a = await volume('a', 'user');
    const request = { ...a.request, volumeCapability: { ...a.request.volumeCapability, mount: { fsType: '', volumeMountGroup: '4321' } } };
    await client.publish(request);
    expect(await readFile(join(dirs.state, stateFileName(a.volumeId)), 'utf8')).toContain('"mountGroup":4321');
    await stopDriver('SIGKILL');
    client.close();

    client = await startDriver();
    vault.store.setSecret('db-user', 'after-restart-group');
    for (let i = 0; i < 50 && (await readFile(join(a.targetPath, 'db-user'), 'utf8')) !== 'after-restart-group'; i++) await wait(100);
    expect(await readFile(join(a.targetPath, 'db-user'), 'utf8')).toBe('after-restart-group');
    const st = await stat(join(a.targetPath, 'db-user'));
    expect({ gid: st.gid, groupBits: st.mode & 0o070 }).toEqual({ gid: 4321, groupBits: 0o040 });
    expect((await stat(a.targetPath)).gid).toBe(4321);
    await client.unpublish({ volumeId: a.volumeId, targetPath: a.targetPath });
    client.close();
    await stopDriver('SIGTERM');
  });

  it('on SIGTERM finishes the publish in flight, then exits 0 and removes its socket', async () => {
    const client = await startDriver();
    vault.injectFault({ path: /^\/secrets\/db-user\//, delayMs: 1000, times: 1 });
    const a = await volume('a', 'user');
    const pending = client.publish(a.request);
    for (let i = 0; i < 100 && !vault.vaultLog.some((r) => r.outcome === 'delayed' && r.path.startsWith('/secrets/db-user/')); i++) await wait(20);
    const exited = new Promise<number | null>((r) => driver!.once('exit', r));
    driver!.kill('SIGTERM');
    await pending; // answered OK, not cut off
    expect(await exited).toBe(0);
    expect(existsSync(dirs.socket)).toBe(false);
    client.close();
    // The mount it finished is still recorded, and a new driver unpublishes it.
    const next = await startDriver();
    await next.unpublish({ volumeId: a.volumeId, targetPath: a.targetPath });
    expect(await ourMounts()).toEqual([]);
    next.close();
    await stopDriver('SIGTERM');
  });

  const stop = async (signal: 'SIGTERM' | 'SIGKILL') => {
    const exited = new Promise((r) => driver!.once('exit', r));
    driver!.kill(signal);
    await exited;
  };
  /** Waits (bounded) until the timer has rotated A, i.e. the recovered volumes had their turn. */
  const rotatedA = async (a: { targetPath: string }, value: string) => {
    vault.store.setSecret('db-user', value);
    for (let i = 0; i < 50 && (await readFile(join(a.targetPath, 'db-user'), 'utf8')) !== value; i++) await wait(100);
    expect(await readFile(join(a.targetPath, 'db-user'), 'utf8')).toBe(value);
  };

  it('a 253-character volume id survives a restart and unpublishes cleanly (its state file was named by the id: too long to create)', async () => {
    let client = await startDriver();
    const a = await volume('a', 'user');
    const volumeId = `csi-${'x'.repeat(249)}`;
    expect(volumeId).toHaveLength(253);
    await client.publish({ ...a.request, volumeId });
    expect(await readdir(dirs.state)).toEqual([stateFileName(volumeId)]);
    client.close();
    await stop('SIGKILL');

    client = await startDriver();
    await rotatedA(a, 'long-id-rotated');
    await client.unpublish({ volumeId, targetPath: a.targetPath });
    expect(await ourMounts()).toEqual([]);
    expect(await readdir(dirs.state)).toEqual([]);
    client.close();
    await stop('SIGTERM');
  });

  it('ignores, logs and removes tampered state files instead of rotating into their targets', async () => {
    let client = await startDriver();
    const a = await volume('a', 'user');
    const b = await volume('b', 'password');
    await client.publish(a.request);
    await client.publish(b.request);
    client.close();
    await stop('SIGKILL');

    // A tmpfs that is not podvault's, at a path of the kubelet's shape.
    const foreign = join(dirs.kubelet, 'pods', 'uid-c', 'volumes', 'kubernetes.io~csi', 'secrets', 'mount');
    await mkdir(foreign, { recursive: true });
    await new Promise((r) => spawn('mount', ['-t', 'tmpfs', 'other', foreign]).on('exit', r));
    await writeFile(join(foreign, 'marker'), 'untouched');
    const forge = (file: string, volumeId: string, target: string, podUid: string) =>
      writeFile(join(dirs.state, file), JSON.stringify({ volumeId, target, className: 'user', pod: { namespace: 'default', name: 'pod-a', uid: podUid, serviceAccount: 'default' }, fetchedAt: 0, versions: {} }));
    await forge(stateFileName('evil-1'), 'evil-1', b.targetPath, 'uid-a'); // pod A's identity into pod B's volume
    await forge(stateFileName('evil-2'), 'evil-2', dirs.state, 'uid-a'); // outside the kubelet's volumes
    await forge(stateFileName('evil-5'), 'evil-5', join(dirs.kubelet, 'pods', 'uid-a', 'volumes', 'kubernetes.io~empty-dir', 'data'), 'uid-a'); // a pod's emptyDir
    await forge(stateFileName('evil-3'), 'evil-3', foreign, 'uid-c'); // a mount that is not podvault's
    await forge(stateFileName('evil-4'), 'csi-someone-else', a.targetPath, 'uid-a'); // renamed file
    await writeFile(join(dirs.state, 'notes.txt'), 'not a state file');
    // A's own file as an earlier driver named it: taken back, and saved under the new name.
    await rename(join(dirs.state, stateFileName(a.volumeId)), join(dirs.state, `${a.volumeId}.json`));

    try {
      client = await startDriver();
      await rotatedA(a, 'after-tampering');
      expect((await readdir(dirs.state)).sort()).toEqual([stateFileName(a.volumeId), stateFileName(b.volumeId)].sort());
      const reasons = driverLog.map((l) => JSON.parse(l) as { msg?: string; reason?: string }).filter((l) => l.msg === 'ignoring and removing a volume state file').map((l) => l.reason);
      expect(reasons).toHaveLength(7);
      expect(reasons).toEqual(
        expect.arrayContaining([
          'target belongs to pod uid uid-b, not uid-a',
          expect.stringMatching(/^target must lie under the kubelet directory /),
          expect.stringMatching(/^target must be a kubelet volume path/),
          'target holds a tmpfs filesystem from "other", not podvault\'s tmpfs',
          'its volume id does not match its file name',
          'not a state file name (sha256 of the volume id)',
          'named by an earlier driver; saved anew under the sha256 of its volume id',
        ]),
      );
      expect(await readdir(foreign)).toEqual(['marker']);
      expect(await readFile(join(b.targetPath, 'db-password'), 'utf8')).toMatch(/never-log-me/);
      await client.unpublish({ volumeId: a.volumeId, targetPath: a.targetPath });
      await client.unpublish({ volumeId: b.volumeId, targetPath: b.targetPath });
      expect(await ourMounts()).toEqual([]);
      client.close();
      await stop('SIGTERM');
    } finally {
      await new Promise((r) => spawn('umount', [foreign]).on('exit', r));
    }
  });
});

describe('state files are named by the sha256 of the volume id', () => {
  it('a volume id with ../ stays inside the state directory, and reads back', async () => {
    const dir = await mkdtemp('/dev/shm/podvault-state-');
    try {
      const store = new StateStore(join(dir, 'state'), createLogger({ level: 'silent' }));
      const volumeId = '../../escape';
      const pod = { namespace: 'default', name: 'p', uid: 'u', serviceAccount: 'default' };
      await store.save({ volumeId, target: '/t', request: { volumeId, targetPath: '/t', className: 'c', pod, secrets: {}, tokens: {} }, fetchedAt: 1, republishedAt: 1, versions: {} });
      expect(await readdir(dir)).toEqual(['state']);
      expect(await readdir(join(dir, 'state'))).toEqual([stateFileName(volumeId)]);
      expect((await store.loadAll()).map((s) => s.state.volumeId)).toEqual([volumeId]);
      await store.remove(volumeId);
      expect(await readdir(join(dir, 'state'))).toEqual([]);
      // A file an earlier driver named `<volume id>.json` is read back, marked for renaming.
      await writeFile(join(dir, 'state', 'csi-old.json'), JSON.stringify({ volumeId: 'csi-old', target: '/t', className: 'c', pod, fetchedAt: 1, versions: {} }));
      expect((await store.loadAll()).map((s) => [s.state.volumeId, s.legacy])).toEqual([['csi-old', true]]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
