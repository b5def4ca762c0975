import { createServer } from 'node:net';
import type { AddressInfo, Server } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../src/log.js';
import { VersionsPublisher } from '../src/version-watch/versions-publisher.js';
import { MAX_STATUS_BYTES } from '../src/version-watch/versions-resource.js';
import { MAX_VERSION_PAGES } from '../src/version-watch/version-poller.js';
import { NAMESPACE, startWatchFixture, until } from './support/version-watch-fixture.js';
import type { WatchFixture } from './support/version-watch-fixture.js';
import { startWatchProcess } from './support/version-watch-process.js';
import type { WatchProcess } from './support/version-watch-process.js';

const RATE = 20;
const MAX_OBJECTS = 100;

describe('attacks on the version watch: class authors and vault answers cannot push it past its bounds', () => {
  let fx: WatchFixture;
  let watch: WatchProcess;
  let hostile: Server;
  let hostileConnections = 0;
  beforeAll(async () => {
    fx = await startWatchFixture();
    hostile = createServer((socket) => {
      hostileConnections += 1;
      socket.destroy();
    });
    await new Promise<void>((resolve) => hostile.listen(0, '127.0.0.1', resolve));
    const hostileUrl = `https://127.0.0.1:${(hostile.address() as AddressInfo).port}`;

    // 100,000 objects in one class (3.5 MB: more than etcd even stores): refused by its size
    // before any YAML is parsed.
    const huge = Array.from({ length: 100_000 }, (_, i) => `{objectName: o${i}, objectType: secret}`).join(',');
    fx.api.put('secretproviderclasses', { apiVersion: 'secrets-store.csi.x-k8s.io/v1', kind: 'SecretProviderClass', metadata: { name: 'huge', namespace: 'mallory' }, spec: { provider: 'azure', parameters: { vaultUri: fx.vault.url, tenantId: fx.vault.tenantId, objects: `array: [${huge}]` } } });
    // 40 valid classes of 100 distinct objects each: 4,000 objects, over --max-objects.
    for (let c = 0; c < 40; c++) fx.putClass('mallory', `many-${c}`, Array.from({ length: 100 }, (_, i) => ({ objectName: `m${c}-${i}`, objectType: 'secret' })));
    // A vault origin the operator did not allow (the driver's --allow-vault-uri rule).
    fx.putClass('mallory', 'elsewhere', [{ objectName: 'x', objectType: 'secret' }], { vaultUri: hostileUrl });
    // A vaultUri with a path and credentials: the driver's parser refuses the class.
    fx.putClass('mallory', 'bad-uri', [{ objectName: 'x', objectType: 'secret' }], { vaultUri: `https://user:pw@${new URL(fx.vault.url).host}/secrets` });
    // A vault whose listing never ends (nextLink back to itself) and one answering 2 MB pages.
    const loop = JSON.stringify({ value: [{ id: `${fx.vault.url}/secrets/a-loop/0123456789abcdef0123456789abcdef`, attributes: { enabled: true, created: 1, updated: 1 } }], nextLink: `${fx.vault.url}/secrets/a-loop/versions?api-version=7.6&maxresults=25&$skiptoken=1` });
    fx.vault.injectFault({ path: /^\/secrets\/a-loop\/versions/, times: 100_000, body: loop });
    const big = JSON.stringify({ value: Array.from({ length: 20_000 }, (_, i) => ({ id: `${fx.vault.url}/secrets/a-big/${String(i).padStart(32, '0')}`, attributes: { enabled: true, created: i, updated: i } })), nextLink: null });
    fx.vault.injectFault({ path: /^\/secrets\/a-big\/versions/, times: 100_000, body: big });
    // Two versions created within the same second: which one is current cannot be told.
    const tie = JSON.stringify({ value: ['1', '2'].map((v) => ({ id: `${fx.vault.url}/secrets/a-tie/${v.repeat(32)}`, attributes: { enabled: true, created: 1_700_000_000, updated: 1_700_000_000 } })), nextLink: null });
    fx.vault.injectFault({ path: /^\/secrets\/a-tie\/versions/, times: 100_000, body: tie });
    fx.putClass('aaa', 'listings', [{ objectName: 'a-loop', objectType: 'secret' }, { objectName: 'a-big', objectType: 'secret' }, { objectName: 'a-tie', objectType: 'secret' }]);

    watch = await startWatchProcess(
      fx.args(['--interval', '8s', '--lease-duration', '3s', '--renew-deadline', '2s', '--retry-period', '250ms', '--max-requests-per-second', String(RATE), '--max-objects', String(MAX_OBJECTS), '--vault-max-attempts', '1']),
      fx.env,
    );
    await until('two polls', () => (watch.polls().length >= 2 ? true : undefined), 30_000);
  }, 60_000);
  afterAll(async () => {
    await watch?.stop();
    await new Promise<void>((resolve) => hostile?.close(() => resolve()));
    await fx?.close();
  });

  it('a class naming 100,000 objects is skipped by name, never parsed into polls', () => {
    const warning = watch.lines.find((l) => l.class === 'mallory/huge');
    expect(String(warning?.problem)).toContain('over the limit');
    expect(fx.vault.vaultLog.some((r) => /^\/secrets\/o\d+\//.test(r.path))).toBe(false);
  });

  it('4,000 distinct objects are cut to --max-objects per interval, with one warning', () => {
    for (const poll of watch.polls()) expect(poll.objects).toBe(MAX_OBJECTS);
    expect(watch.lines.filter((l) => l.flag === '--max-objects')).toHaveLength(1);
    const second = watch.polls()[1];
    // Each polled object costs one request, save the endless listing (MAX_VERSION_PAGES + 1).
    expect(second?.requests).toBe(MAX_OBJECTS - 1 + MAX_VERSION_PAGES + 1);
  });

  it('vault requests never exceed --max-requests-per-second (token bucket, burst = rate)', () => {
    const times = fx.watcherRequests().map((r) => r.at);
    let worst = 0;
    for (let i = 0, j = 0; i < times.length; i++) {
      while ((times[i] as number) - (times[j] as number) >= 1000) j++;
      worst = Math.max(worst, i - j + 1);
    }
    expect(worst).toBeLessThanOrEqual(2 * RATE + 1);
  });

  it('a vault origin outside the allow-list is never contacted', () => {
    expect(hostileConnections).toBe(0);
    expect(watch.polls().every((p) => (p.refusedObjects as number) >= 1)).toBe(true);
    expect(watch.lines.find((l) => l.class === 'mallory/bad-uri')?.problem).toMatch(/vaultUri must be the vault origin only/);
  });

  it('an endless versions listing stops at MAX_VERSION_PAGES, a 2 MB page is refused (Error), two versions of one second are Ambiguous: never guessed', () => {
    const status = fx.status();
    expect(status?.unavailable.secrets['a-loop']).toBe('Error');
    expect(status?.unavailable.secrets['a-big']).toBe('Error');
    expect(status?.unavailable.secrets['a-tie']).toBe('Ambiguous');
    const loopRequests = fx.watcherRequests().filter((r) => r.path.startsWith('/secrets/a-loop/')).length;
    expect(loopRequests).toBeLessThanOrEqual((MAX_VERSION_PAGES + 1) * watch.polls().length + MAX_VERSION_PAGES + 1);
    expect(Object.keys(status?.unavailable.secrets ?? {}).length).toBe(MAX_OBJECTS);
    expect(fx.watcherRequests().filter((r) => r.path.startsWith('/secrets/') && !/\/versions\/?$/.test(r.path))).toEqual([]);
  });

  it('a vault status over MAX_STATUS_BYTES is refused, not written (nodes fall back for that vault)', async () => {
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromFile(fx.kubeconfig);
    const results: string[] = [];
    const publisher = new VersionsPublisher({ kubeConfig, namespace: NAMESPACE, intervalMs: 1000, identity: 'test', mayWrite: () => true, log: createLogger({ level: 'silent' }), onWrite: (r) => results.push(r) });
    const objects = Array.from({ length: 8_000 }, (_, i) => ({ object: { vaultUrl: 'https://big.vault.azure.net', collection: 'secrets' as const, name: `${'n'.repeat(110)}${i}` }, result: { version: 'f'.repeat(32) } }));
    const status = await publisher.statusFor('https://big.vault.azure.net', objects, Date.now());
    expect(JSON.stringify(status).length).toBeGreaterThan(MAX_STATUS_BYTES);
    expect(await publisher.publish(status, Date.now())).toBe(false);
    expect(results).toEqual(['too-large']);
    expect(fx.api.requests.filter((r) => !r.startsWith('GET ') && r.includes('big.vault.azure.net'))).toEqual([]);
  });
});
