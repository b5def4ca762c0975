import { lstat, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findMount, readMountInfo } from '../src/driver/mountinfo.js';
import { CLIENT_ID, CLIENT_SECRET, isRoot, rpcError, SECRET_VALUES, startHarness } from './support/harness.js';
import type { Harness } from './support/harness.js';

describe.skipIf(!isRoot)('CSI server over a real unix socket (needs root for tmpfs)', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({ rotationInterval: '0s' }); // every republish refetches
    await h.writeClass('app', h.vaultParameters([{ objectName: 'db-password' }, { objectName: 'db-user', filePermission: '0600' }, { objectName: 'api-token', objectAlias: 'tokens/api' }]));
  });
  afterAll(async () => {
    await h?.close();
  });

  it('answers the Identity service: name, version, no controller, ready', async () => {
    const info = await h.client.pluginInfo();
    expect(info.name).toBe('csi.podvault.dev');
    expect(info.vendorVersion).toMatch(/^\d+\.\d+\.\d+/);
    const probe = await h.client.probe();
    expect(probe.ready?.value).toBe(true);
    const caps = await new Promise<unknown[]>((resolve, reject) =>
      h.client.identity.GetPluginCapabilities({}, (err, res) => (err ? reject(err) : resolve(res?.capabilities ?? []))),
    );
    expect(caps).toEqual([]);
  });

  it('matches nodePublishSecretRef keys case-insensitively (ClientID, ClientSecret), as the Azure provider does', async () => {
    const spellings: Record<string, string>[] = [{ ClientID: CLIENT_ID, ClientSecret: CLIENT_SECRET }, { CLIENTID: CLIENT_ID, clientSecret: CLIENT_SECRET }];
    for (const secrets of spellings) {
      const v = await h.volume({ className: 'app', secrets });
      await h.client.publish(v.request);
      expect(await readFile(join(v.targetPath, 'db-password'), 'utf8')).toBe(SECRET_VALUES.dbPassword);
      await h.client.unpublish({ volumeId: v.volumeId, targetPath: v.targetPath });
    }
    // Two spellings that disagree are refused, naming the keys and never a value.
    const v = await h.volume({ className: 'app', secrets: { clientid: CLIENT_ID, ClientID: 'someone-else', clientsecret: CLIENT_SECRET } });
    const err = await rpcError(h.client.publish(v.request));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toMatch(/nodePublishSecretRef holds key clientid more than once with different values \(clientid, ClientID\)/);
    expect(err.details).not.toContain('someone-else');
  });

  it('answers NodeGetInfo with the node id and NodeGetCapabilities with VOLUME_MOUNT_GROUP only (no stage/unstage)', async () => {
    expect((await h.client.nodeGetInfo()).nodeId).toBe('test-node');
    const caps = await new Promise<unknown[]>((resolve, reject) =>
      h.client.node.NodeGetCapabilities({}, (err, res) => (err ? reject(err) : resolve(res?.capabilities ?? []))),
    );
    expect(caps).toEqual([{ rpc: { type: 'VOLUME_MOUNT_GROUP' }, type: 'rpc' }]);
  });

  it('answers UNIMPLEMENTED for the RPCs an ephemeral-only node plugin does not serve', async () => {
    const err = await rpcError(
      new Promise((resolve, reject) => h.client.node.NodeStageVolume({ volumeId: 'v' }, (e, r) => (e ? reject(e) : resolve(r)))),
    );
    expect(err.code).toBe(status.UNIMPLEMENTED);
    const stats = await rpcError(
      new Promise((resolve, reject) => h.client.node.NodeGetVolumeStats({ volumeId: 'v' }, (e, r) => (e ? reject(e) : resolve(r)))),
    );
    expect(stats.code).toBe(status.UNIMPLEMENTED);
  });

  it('publishes the class onto a tmpfs with the files, aliases and modes the class names', async () => {
    const v = await h.volume();
    await h.client.publish(v.request);
    const mount = await findMount(v.targetPath);
    expect(mount?.fsType).toBe('tmpfs');
    expect(mount?.source).toBe('podvault');
    expect(mount?.mountOptions).toEqual(expect.arrayContaining(['nosuid', 'nodev', 'noexec']));
    expect(mount?.superOptions).toContain('size=8256k'); // twice --tmpfs-size (4Mi) + 64Ki: a rotation always fits

    expect(await readFile(join(v.targetPath, 'db-password'), 'utf8')).toBe(SECRET_VALUES.dbPassword);
    expect(await readFile(join(v.targetPath, 'db-user'), 'utf8')).toBe('app');
    expect(await readFile(join(v.targetPath, 'tokens/api'), 'utf8')).toBe(SECRET_VALUES.apiToken);
    expect((await lstat(join(v.targetPath, '..data', 'db-password'))).mode & 0o777).toBe(0o644);
    expect((await lstat(join(v.targetPath, '..data', 'db-user'))).mode & 0o777).toBe(0o600);
    expect(await readlink(join(v.targetPath, 'db-password'))).toBe('..data/db-password');
    expect(await readlink(join(v.targetPath, 'tokens'))).toBe('..data/tokens');

    await h.client.unpublish({ volumeId: v.volumeId, targetPath: v.targetPath });
    expect(await findMount(v.targetPath)).toBeUndefined();
    await expect(lstat(v.targetPath)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('treats a republish of the same volume as a refresh: OK, same mount, new contents swapped in', async () => {
    const v = await h.volume();
    await h.client.publish(v.request);
    const firstData = await readlink(join(v.targetPath, '..data'));
    await h.client.publish(v.request);
    expect(await readlink(join(v.targetPath, '..data'))).toBe(firstData); // nothing changed: no swap

    h.vault.store.setSecret('db-user', 'app-rotated');
    await h.client.publish(v.request);
    expect(await readFile(join(v.targetPath, 'db-user'), 'utf8')).toBe('app-rotated');
    expect(await readlink(join(v.targetPath, '..data'))).not.toBe(firstData);
    expect((await readMountInfo()).filter((m) => m.mountPoint === v.targetPath)).toHaveLength(1);
    await h.client.unpublish({ volumeId: v.volumeId, targetPath: v.targetPath });
  });

  it('unpublishes a target that is already gone with OK', async () => {
    const v = await h.volume();
    await h.client.unpublish({ volumeId: v.volumeId, targetPath: v.targetPath });
    await h.client.unpublish({ volumeId: v.volumeId, targetPath: join(h.kubeletDir, 'pods', 'nope', 'volumes', 'kubernetes.io~csi', 'gone', 'mount') });
  });

  it('refuses a request over 2 MiB before parsing it, and keeps serving', async () => {
    const v = await h.volume();
    const err = await rpcError(h.client.publish({ ...v.request, secrets: { clientid: CLIENT_ID, clientsecret: 'x'.repeat(3 * 1024 * 1024) } }));
    expect(err.code).toBe(status.RESOURCE_EXHAUSTED);
    await expect(lstat(v.targetPath)).rejects.toMatchObject({ code: 'ENOENT' });
    expect((await h.client.probe()).ready?.value).toBe(true);
  });

  it('serves many concurrent publishes of different volumes', async () => {
    const volumes = await Promise.all(Array.from({ length: 20 }, () => h.volume()));
    await Promise.all(volumes.map((v) => h.client.publish(v.request)));
    for (const v of volumes) expect(await readFile(join(v.targetPath, 'db-user'), 'utf8')).toMatch(/^app/);
    await Promise.all(volumes.map((v) => h.client.unpublish({ volumeId: v.volumeId, targetPath: v.targetPath })));
    for (const v of volumes) expect(await findMount(v.targetPath)).toBeUndefined();
  });

  it('serialises operations on one volume: concurrent publishes mount once, racing unpublishes leave a consistent state', async () => {
    const mountsAt = async (path: string): Promise<number> => (await readMountInfo()).filter((m) => m.mountPoint === path).length;

    const v = await h.volume();
    await Promise.all(Array.from({ length: 6 }, () => h.client.publish(v.request)));
    expect(await mountsAt(v.targetPath)).toBe(1); // without the lock, two publishes would both mount

    const unpublish = { volumeId: v.volumeId, targetPath: v.targetPath };
    await Promise.all([h.client.unpublish(unpublish), h.client.publish(v.request), h.client.unpublish(unpublish), h.client.publish(v.request)]);
    const mounted = await mountsAt(v.targetPath);
    if (mounted === 1) expect(await readFile(join(v.targetPath, 'db-user'), 'utf8')).toMatch(/^app/);
    else {
      expect(mounted).toBe(0);
      await expect(lstat(v.targetPath)).rejects.toMatchObject({ code: 'ENOENT' });
    }
    await h.client.unpublish(unpublish);
    expect(await mountsAt(v.targetPath)).toBe(0);
  });

  it('never writes a secret value or the client secret into its logs', async () => {
    const v = await h.volume();
    await h.client.publish(v.request);
    await h.client.unpublish({ volumeId: v.volumeId, targetPath: v.targetPath });
    const all = h.logs.join('');
    expect(all).toContain('NodePublishVolume');
    expect(all).toContain(CLIENT_ID); // who asked is logged...
    for (const value of [...Object.values(SECRET_VALUES), CLIENT_SECRET]) expect(all).not.toContain(value); // ...what they got is not
  });
});
