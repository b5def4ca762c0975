import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDevVault } from '../src/devvault/server.js';
import type { DevVault } from '../src/devvault/server.js';
import { parseSeed } from '../src/devvault/seed.js';
import { CsiClient } from '../src/driver/client.js';
import { ephemeralVolume } from '../src/driver/kubelet-volume.js';
import { readMountInfo } from '../src/driver/mountinfo.js';
import { packageRoot } from '../src/package-info.js';
import { CLIENT_ID, CLIENT_SECRET, isRoot, objectsParameter, TEST_SEED } from './support/harness.js';

const BIN = join(packageRoot, 'bin', 'podvault.js');
const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!isRoot)('restart recovery: kill -9 the driver during a publish and after mounts', () => {
  let vault: DevVault;
  let work: string;
  let driver: ChildProcess | undefined;
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

  async function startDriver(): Promise<CsiClient> {
    const args = ['driver', '--standalone', dirs.classes, '--kubelet-dir', dirs.kubelet, '--state-dir', dirs.state, '--endpoint', `unix://${dirs.socket}`, '--rotation-interval', '1s',
      '--ca-file', join(work, 'ca.pem'), '--authority-host', vault.url, '--allow-vault-uri', vault.url, '--log-level', 'warn'];
    driver = spawn(process.execPath, [BIN, ...args], { stdio: 'ignore', env: { ...process.env, NODE_NAME: 'node-r' } });
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
    expect(await readdir(dirs.state)).toEqual([`${a.volumeId}.json`]);
    expect(await readFile(join(dirs.state, `${a.volumeId}.json`), 'utf8')).not.toContain(CLIENT_SECRET);

    // B's fetch hangs in the vault; the driver is killed mid-publish.
    vault.injectFault({ path: /^\/secrets\/db-password\//, delayMs: 3000, times: 1 });
    const b = await volume('b', 'password');
    const pending = client.publish(b.request).catch((err: unknown) => err);
    for (let i = 0; i < 100 && !vault.vaultLog.some((r) => r.outcome === 'delayed'); i++) await wait(20);
    driver!.kill('SIGKILL');
    await new Promise((r) => driver!.once('exit', r));
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
    driver!.kill('SIGTERM');
    await new Promise((r) => driver!.once('exit', r));
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
    driver!.kill('SIGTERM');
    await new Promise((r) => driver!.once('exit', r));
  });
});
