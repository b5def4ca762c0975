import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STALE_AFTER_INTERVALS, isFresh, versionsObjectName } from '../src/version-watch/versions-resource.js';
import { WATCHER_SECRET, startWatchFixture, until } from './support/version-watch-fixture.js';
import type { WatchFixture } from './support/version-watch-fixture.js';
import { startWatchProcess } from './support/version-watch-process.js';
import type { LogLine, WatchProcess } from './support/version-watch-process.js';

const INTERVAL_MS = 1500;

/** A value GET: `/secrets/<name>/` or `/secrets/<name>/<version>` (not the versions listing). */
const isValueGet = (path: string): boolean => path.startsWith('/secrets/') && !/\/versions\/?$/.test(path);

describe('version-watch polling against dev-vault (metadata-only identity)', () => {
  let fx: WatchFixture;
  let watch: WatchProcess;
  beforeAll(async () => {
    fx = await startWatchFixture();
    // Two classes in two namespaces name db-password: it is one object to poll.
    fx.putClass('team-a', 'app', [
      { objectName: 'db-password', objectType: 'secret' },
      { objectName: 'signing', objectType: 'key' },
      { objectName: 'tls', objectType: 'cert' },
      { objectName: 'pinned-secret', objectType: 'secret', objectVersion: 'abc123' },
    ]);
    fx.putClass('team-b', 'worker', [{ objectName: 'db-password', objectType: 'secret', objectAlias: 'db' }, { objectName: 'api-token', objectType: 'secret' }]);
    // A class author's mistake: objects is not YAML of the expected shape.
    fx.api.put('secretproviderclasses', { apiVersion: 'secrets-store.csi.x-k8s.io/v1', kind: 'SecretProviderClass', metadata: { name: 'broken', namespace: 'team-c' }, spec: { provider: 'azure', parameters: { vaultUri: fx.vault.url, tenantId: fx.vault.tenantId, objects: 'array: [ {{{' } } });
    // Classes of other providers are not the watcher's.
    fx.api.put('secretproviderclasses', { apiVersion: 'secrets-store.csi.x-k8s.io/v1', kind: 'SecretProviderClass', metadata: { name: 'gcp', namespace: 'team-c' }, spec: { provider: 'gcp', parameters: { secrets: 'x' } } });
    watch = await startWatchProcess(fx.args(['--interval', `${INTERVAL_MS}ms`, '--lease-duration', '3s', '--renew-deadline', '2s', '--retry-period', '250ms', '--metrics-addr', '127.0.0.1:0']), fx.env);
    await until('two polls', () => (watch.polls().length >= 2 ? true : undefined), 15_000);
  });
  afterAll(async () => {
    await watch?.stop();
    await fx?.close();
  });

  it('publishes every distinct unpinned object\'s current version, names and versions only', () => {
    const status = fx.status();
    expect(status?.vaultUri).toBe(fx.vault.url);
    expect(status?.intervalSeconds).toBe(1.5);
    expect(Object.keys(status?.versions.secrets ?? {}).sort()).toEqual(['api-token', 'db-password']);
    expect(status?.versions.secrets['db-password']?.version).toBe(fx.vault.store.get('secrets', 'db-password')?.version);
    expect(status?.versions.keys.signing?.version).toBe(fx.vault.store.get('keys', 'signing')?.version);
    expect(status?.versions.certificates.tls?.version).toBe(fx.vault.store.get('certificates', 'tls')?.version);
    const text = JSON.stringify(fx.api.get('vaultobjectversions', 'podvault.dev/v1alpha1', 'podvault', versionsObjectName(fx.vault.url)));
    for (const value of ['one', 'two', 'tok', WATCHER_SECRET]) expect(text).not.toContain(`"${value}"`);
    expect(text).not.toMatch(/eyJ[\w-]+\.[\w-]+/);
    expect(isFresh(status!)).toBe(true);
    expect(isFresh(status!, Date.parse(status!.observedAt) + STALE_AFTER_INTERVALS * INTERVAL_MS + 1)).toBe(false);
  });

  it('skips the malformed class, naming it, and keeps polling the others', () => {
    const warning = watch.lines.find((l) => l.msg === 'SecretProviderClass skipped by the version watch: it is malformed');
    expect(warning?.class).toBe('team-c/broken');
    expect(String(warning?.problem)).toContain('objects');
    expect(watch.polls().every((p) => p.malformedClasses === 1 && p.objects === 4)).toBe(true);
  });

  it('never reads a value: every request of its identity is a versions listing or a key/certificate properties read', () => {
    const requests = fx.watcherRequests();
    expect(requests.length).toBeGreaterThan(0);
    expect(requests.filter((r) => isValueGet(r.path))).toEqual([]);
    expect(new Set(requests.map((r) => r.path))).toEqual(new Set(['/secrets/db-password/versions', '/secrets/api-token/versions', '/keys/signing/', '/certificates/tls/']));
    expect(fx.vault.requests.denied ?? 0).toBe(0);
  });

  it('its client secret is in neither its argv nor its log', () => {
    expect(watch.child.spawnargs.join(' ')).not.toContain(WATCHER_SECRET);
    expect(JSON.stringify(watch.lines)).not.toContain(WATCHER_SECRET);
    expect(watch.lines.find((l) => l.msg === 'podvault version-watch started')?.identity).toMatch(/^service principal secret version-watch-reader/);
  });

  it('pinned objects are never polled', () => {
    expect(fx.vault.vaultLog.filter((r) => r.path.includes('pinned-secret'))).toEqual([]);
  });

  it('metadata requests per interval equal the distinct objects (4), across many intervals', async () => {
    await until('six polls', () => (watch.polls().length >= 6 ? true : undefined), 15_000);
    const polls = watch.polls();
    // The first round also meets each SDK client's authentication challenge (3 clients; two
    // listings sent at once by the same client may both be challenged).
    const challenges = fx.vault.requests.challenge ?? 0;
    expect(challenges).toBeGreaterThanOrEqual(3);
    expect(challenges).toBeLessThanOrEqual(4);
    expect(polls[0]?.requests).toBe(4 + challenges);
    for (const p of polls.slice(1)) expect(p.requests).toBe(4);
    const perRound = fx.watcherRequests().length / polls.length;
    expect(perRound).toBeGreaterThanOrEqual(4);
    expect(perRound).toBeLessThanOrEqual(4 + 1);
    const metrics = await (await fetch(`${watch.metricsUrl}/metrics`)).text();
    expect(metrics).toMatch(/podvault_version_watch_objects 4/);
    expect(metrics).toMatch(/podvault_version_watch_leader 1/);
    expect(metrics).toMatch(/podvault_version_watch_vault_requests_total\{result="200"\} \d+/);
    expect(metrics).not.toContain('db-password');
    expect((await fetch(`${watch.metricsUrl}/healthz`)).status).toBe(200);
  });

  it('a new secret version reaches the published resource within one interval, without a value GET', async () => {
    const before = fx.status()?.versions.secrets['db-password'];
    const version = fx.vault.store.setSecret('db-password', 'three');
    const setAt = Date.now();
    const seen = await until('the new version published', () => (fx.status()?.versions.secrets['db-password']?.version === version ? Date.now() : undefined), INTERVAL_MS * 2 + 1000);
    expect(seen - setAt).toBeLessThanOrEqual(INTERVAL_MS + 500);
    console.log(`new secret version published ${seen - setAt} ms after it was set (interval ${INTERVAL_MS} ms)`);
    expect(fx.status()?.versions.secrets['db-password']?.since).not.toBe(before?.since);
    expect(fx.watcherRequests().filter((r) => isValueGet(r.path))).toEqual([]);
  });

  it('writes on change, else one heartbeat per interval', async () => {
    const statusWrites = (): number => fx.api.requests.filter((r) => r.startsWith('PUT ') && r.endsWith('/status')).length;
    const polls = (): LogLine[] => watch.polls();
    const n0 = polls().length;
    const w0 = statusWrites();
    await until('four more polls', () => (polls().length >= n0 + 4 ? true : undefined), 15_000);
    const w = statusWrites() - w0;
    // Nothing changed: heartbeats only, at most one per poll (one interval apart), at least every other.
    expect(w).toBeGreaterThanOrEqual(2);
    expect(w).toBeLessThanOrEqual(polls().length - n0);
  });

  it('an object that disappears is listed unavailable (NotFound): nodes refetch it periodically', async () => {
    fx.putClass('team-b', 'worker', [{ objectName: 'api-token', objectType: 'secret' }, { objectName: 'no-such-secret', objectType: 'secret' }]);
    const status = await until('no-such-secret unavailable', () => (fx.status()?.unavailable.secrets['no-such-secret'] ? fx.status() : undefined), 10_000);
    expect(status?.unavailable.secrets['no-such-secret']).toBe('NotFound');
    expect(status?.versions.secrets['no-such-secret']).toBeUndefined();
  });

  // Last: this reads as the watcher's identity, so its refused GET is in dev-vault's log.
  it('the identity really is metadata-only: dev-vault refuses it a value', async () => {
    // The identity really is metadata-only: dev-vault refuses it a value.
    const { SecretClient } = await import('@azure/keyvault-secrets');
    const { ClientSecretCredential } = await import('@azure/identity');
    const credential = new ClientSecretCredential(fx.vault.tenantId, 'version-watch-reader', WATCHER_SECRET, { authorityHost: fx.vault.url, disableInstanceDiscovery: true, tlsOptions: { ca: fx.vault.caPem } } as never);
    const client = new SecretClient(fx.vault.url, credential, { disableChallengeResourceVerification: true, retryOptions: { maxRetries: 0 }, tlsOptions: { ca: fx.vault.caPem } } as never);
    await expect(client.getSecret('db-password')).rejects.toMatchObject({ statusCode: 403 });
  });
});
