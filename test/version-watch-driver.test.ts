import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubeApiDouble } from './support/kube-api-double.js';
import { CLIENT_ID, CLIENT_SECRET, isRoot, objectsParameter, SECRET_VALUES, startHarness } from './support/harness.js';
import type { Harness } from './support/harness.js';
import { startWatchProcess } from './support/version-watch-process.js';
import type { WatchProcess } from './support/version-watch-process.js';
import { until } from './support/version-watch-fixture.js';
import { VOV_API_VERSION, VOV_KIND, VOV_PLURAL, versionsObjectName } from '../src/version-watch/versions-resource.js';
import type { VersionsStatus } from '../src/version-watch/versions-resource.js';

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));
const NAMESPACE = 'podvault';
const READER_ID = 'vw-reader-client';
const READER_SECRET = 'vw-reader-secret-never-logged-3c1d';

/**
 * Drivers with --version-watch (issue 12 item 2): a rotation compares the versions it mounted with
 * the published VaultObjectVersions and fetches, as the pod's identity, only what moved; a moved
 * version reaches the volume on the watch event, without waiting for the rotation interval; a
 * stale or missing publication makes rotations refetch as without the watch.
 */
describe.skipIf(!isRoot)('drivers with the version watch', () => {
  let api: KubeApiDouble;
  /** Rotates every second (republishes, and its timer). */
  let h: Harness;
  /** Rotates every 10 minutes: only the watch's events rotate its volumes within a test. */
  let hw: Harness;
  const appGets = (on = h): string[] => on.vault.vaultLog.filter((r) => r.clientId === CLIENT_ID && r.path.startsWith('/secrets/') && !r.path.endsWith('/versions')).map((r) => r.path);
  const current = (name: string, on = h): string => on.vault.store.get('secrets', name)?.version ?? '';
  const publishVersions = (versions: Record<string, string>, options: { observedAt?: string; unavailable?: Record<string, 'Forbidden'>; on?: Harness } = {}): void => {
    const on = options.on ?? h;
    const now = new Date().toISOString();
    const status: VersionsStatus = {
      vaultUri: on.vault.url,
      intervalSeconds: 60,
      observedAt: options.observedAt ?? now,
      versions: { secrets: Object.fromEntries(Object.entries(versions).map(([name, version]) => [name, { version, since: now }])), keys: {}, certificates: {} },
      unavailable: { secrets: options.unavailable ?? {}, keys: {}, certificates: {} },
    };
    api.put(VOV_PLURAL, { apiVersion: VOV_API_VERSION, kind: VOV_KIND, metadata: { name: versionsObjectName(on.vault.url), namespace: NAMESPACE }, status });
  };
  const putClass = (name: string, objects: Parameters<typeof objectsParameter>[0], on = h): void => {
    api.put('secretproviderclasses', { apiVersion: 'secrets-store.csi.x-k8s.io/v1', kind: 'SecretProviderClass', metadata: { name, namespace: 'default' }, spec: { provider: 'azure', parameters: { vaultUri: on.vault.url, tenantId: on.vault.tenantId, objects: objectsParameter(objects) } } });
  };

  /** A volume of a new class of db-password and db-user on `hw`, both vouched current, published. */
  const publishVouched = async (className: string): Promise<Awaited<ReturnType<Harness['volume']>>> => {
    putClass(className, [{ objectName: 'db-password' }, { objectName: 'db-user' }], hw);
    publishVersions({ 'db-password': current('db-password', hw), 'db-user': current('db-user', hw) }, { on: hw });
    const v = await hw.volume({ className });
    await hw.client.publish(v.request);
    return v;
  };

  beforeAll(async () => {
    api = await new KubeApiDouble().start();
    const kubeconfig = await api.writeKubeconfig();
    [h, hw] = await Promise.all([
      startHarness({ standalone: undefined, kubeconfig, rotationInterval: '1s', versionWatch: true }),
      startHarness({ standalone: undefined, kubeconfig, rotationInterval: '10m', versionWatch: true }),
    ]);
  });
  afterAll(async () => {
    await h?.close();
    await hw?.close();
    await api?.close();
  });

  it('keeps unchanged objects across many rotation intervals: no value GET at all', async () => {
    putClass('kept', [{ objectName: 'db-password' }, { objectName: 'db-user' }, { objectName: 'api-token', objectVersion: current('api-token') }]);
    publishVersions({ 'db-password': current('db-password'), 'db-user': current('db-user') });
    const v = await h.volume({ className: 'kept' });
    await h.client.publish(v.request);
    const before = appGets().length;
    for (let i = 0; i < 4; i++) {
      await wait(1100);
      await h.client.publish(v.request); // the kubelet's republish, past the rotation interval
    }
    expect(appGets().length).toBe(before);
    expect(await readFile(join(v.targetPath, 'db-password'), 'utf8')).toBe(SECRET_VALUES.dbPassword);
    expect(await readFile(join(v.targetPath, 'api-token'), 'utf8')).toBe(SECRET_VALUES.apiToken);
    const kept = h.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'rotation check: nothing changed' && l.kept === 3 && l.fetched === 0);
    expect(kept.length).toBeGreaterThanOrEqual(4);
    await h.client.unpublish({ volumeId: v.volumeId, targetPath: v.targetPath });
  });

  it('a moved version reaches the volume on the watch event; only that object is fetched, as the pod', async () => {
    const v = await publishVouched('moved');
    const before = appGets(hw).length;
    const next = hw.vault.store.setSecret('db-password', 'pw-rotated-by-watch');
    publishVersions({ 'db-password': next, 'db-user': current('db-user', hw) }, { on: hw });
    // No republish, and a 10-minute rotation interval: the watch event alone rotates it.
    await until('the new version on the volume', async () => ((await readFile(join(v.targetPath, 'db-password'), 'utf8')) === 'pw-rotated-by-watch' ? true : undefined), 5000);
    expect(appGets(hw).slice(before)).toEqual(['/secrets/db-password/']);
    expect(await readFile(join(v.targetPath, 'db-user'), 'utf8')).toBe('app');
    const rotated = hw.logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'rotated: new contents swapped in' && l.volumeId === v.volumeId);
    expect(rotated).toMatchObject({ trigger: 'watch', fetched: 1, kept: 1 });
    await hw.client.unpublish({ volumeId: v.volumeId, targetPath: v.targetPath });
  });

  it('an edited object is fetched again at the next rotation (the same version can make other bytes), the others kept, then kept again', async () => {
    putClass('edited', [{ objectName: 'hexed' }, { objectName: 'db-user' }]);
    publishVersions({ hexed: current('hexed'), 'db-user': current('db-user') });
    const v = await h.volume({ className: 'edited' });
    await h.client.publish(v.request);
    expect(await readFile(join(v.targetPath, 'hexed'), 'utf8')).toBe('00ff10');
    putClass('edited', [{ objectName: 'hexed', objectEncoding: 'hex' }, { objectName: 'db-user' }]);
    await wait(200);
    let before = appGets().length;
    await wait(1100);
    await h.client.publish(v.request);
    expect(appGets().slice(before)).toEqual(['/secrets/hexed/']);
    expect(await readFile(join(v.targetPath, 'hexed'))).toEqual(Buffer.from([0x00, 0xff, 0x10]));
    before = appGets().length;
    await wait(1100);
    await h.client.publish(v.request);
    expect(appGets().length).toBe(before);
    expect(await readFile(join(v.targetPath, 'hexed'))).toEqual(Buffer.from([0x00, 0xff, 0x10]));
    await h.client.unpublish({ volumeId: v.volumeId, targetPath: v.targetPath });
  });

  it('stale, missing or unavailable versions: the rotation refetches as without the watch', async () => {
    putClass('fallback', [{ objectName: 'db-password' }, { objectName: 'db-user' }]);
    const v = await h.volume({ className: 'fallback' });
    await h.client.publish(v.request);
    const rotateOnce = async (): Promise<string[]> => {
      const before = appGets().length;
      await wait(1100);
      await h.client.publish(v.request);
      return appGets().slice(before).sort();
    };
    // Stale: no poll written for more than 3 intervals.
    publishVersions({ 'db-password': current('db-password'), 'db-user': current('db-user') }, { observedAt: new Date(Date.now() - 181_000).toISOString() });
    await wait(200);
    expect(await rotateOnce()).toEqual(['/secrets/db-password/', '/secrets/db-user/']);
    // Fresh, but one object the watcher could not read and one it does not list.
    publishVersions({}, { unavailable: { 'db-password': 'Forbidden' } });
    await wait(200);
    expect(await rotateOnce()).toEqual(['/secrets/db-password/', '/secrets/db-user/']);
    // Gone altogether.
    api.delete(VOV_PLURAL, VOV_API_VERSION, NAMESPACE, versionsObjectName(h.vault.url));
    await wait(200);
    expect(await rotateOnce()).toEqual(['/secrets/db-password/', '/secrets/db-user/']);
    await h.client.unpublish({ volumeId: v.volumeId, targetPath: v.targetPath });
  });

  it('a pod that lost access stops getting new versions: its refetch is refused and raised as an event', async () => {
    const v = await publishVouched('revoked');
    const mounted = await readFile(join(v.targetPath, 'db-password'), 'utf8');
    hw.vault.store.putClient({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, managedIdentity: false, read: ['db-user'] });
    try {
      const next = hw.vault.store.setSecret('db-password', 'pw-the-pod-may-no-longer-read');
      publishVersions({ 'db-password': next, 'db-user': current('db-user', hw) }, { on: hw });
      await until('RotationFailed', () => (api.created.some((e) => (e as { reason?: string; message?: string }).reason === 'RotationFailed' && ((e as { message?: string }).message ?? '').includes('class revoked')) ? true : undefined), 5000);
      expect(await readFile(join(v.targetPath, 'db-password'), 'utf8')).toBe(mounted);
    } finally {
      hw.vault.store.putClient({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, managedIdentity: false, read: ['db-*', 'api-token', 'hexed', 'b64', 'disabled-one'] });
    }
    await hw.client.unpublish({ volumeId: v.volumeId, targetPath: v.targetPath });
  });

  describe('with the real watcher', () => {
    let watch: WatchProcess | undefined;
    afterAll(async () => {
      await watch?.stop();
    });

    it('a new secret version in dev-vault reaches a mounted volume through podvault version-watch', async () => {
      api.delete(VOV_PLURAL, VOV_API_VERSION, NAMESPACE, versionsObjectName(hw.vault.url));
      hw.vault.store.putClient({ clientId: READER_ID, clientSecret: READER_SECRET, managedIdentity: false, read: [], keyVaultReader: true });
      putClass('watched', [{ objectName: 'db-user' }, { objectName: 'api-token' }], hw);
      watch = await startWatchProcess(
        ['--kubeconfig', hw.config.classSource.kind === 'kubernetes' ? (hw.config.classSource.kubeconfig ?? '') : '', '--namespace', NAMESPACE, '--ca-file', hw.config.caFile ?? '', '--authority-host', hw.vault.url, '--allow-vault-uri', hw.vault.url, '--interval', '1s', '--lease-duration', '3s', '--renew-deadline', '2s', '--retry-period', '250ms'],
        { AZURE_TENANT_ID: hw.vault.tenantId, AZURE_CLIENT_ID: READER_ID, AZURE_CLIENT_SECRET: READER_SECRET },
      );
      await until('a published api-token version', () => (watch!.polls().length >= 1 && api.get(VOV_PLURAL, VOV_API_VERSION, NAMESPACE, versionsObjectName(hw.vault.url)) ? true : undefined), 15_000);
      const v = await hw.volume({ className: 'watched' });
      await hw.client.publish(v.request);
      const before = appGets(hw).length;
      const startedAt = Date.now();
      hw.vault.store.setSecret('api-token', 'tok-rotated-through-the-watch');
      await until('the new api-token on the volume', async () => ((await readFile(join(v.targetPath, 'api-token'), 'utf8')) === 'tok-rotated-through-the-watch' ? true : undefined), 10_000);
      // One poll interval (1 s) plus one watch event, with margin for a loaded machine.
      expect(Date.now() - startedAt).toBeLessThan(8000);
      expect(appGets(hw).slice(before)).toEqual(['/secrets/api-token/']);
      await hw.client.unpublish({ volumeId: v.volumeId, targetPath: v.targetPath });
    });
  });
});
