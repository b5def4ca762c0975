import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Fault } from '../src/devvault/server.js';
import { isRoot, rpcError, startHarness } from './support/harness.js';
import type { Harness } from './support/harness.js';

/** What dev-vault saw for one object's path, in order: '429', '500', 'reset', 'served'. */
const outcomes = (h: Harness, name: string, since: number): string[] =>
  h.vault.vaultLog.filter((r) => r.at >= since && r.path.startsWith(`/secrets/${name}/`)).map((r) => r.outcome);

describe.skipIf(!isRoot)('Key Vault faults: retried when transient, never when final, the whole node slowing down on 429', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ vaultRequestTimeout: '500ms', publishDeadline: '20s' });
    await h.writeClass('user', h.vaultParameters([{ objectName: 'db-user' }]));
    await h.writeClass('password', h.vaultParameters([{ objectName: 'db-password' }]));
    await h.writeClass('missing', h.vaultParameters([{ objectName: 'db-missing' }]));
    await h.writeClass('forbidden', h.vaultParameters([{ objectName: 'other-secret' }]));
    const warm = await h.volume({ className: 'user' }); // fetch the token once, outside the timings
    await h.client.publish(warm.request);
    await h.client.unpublish({ volumeId: warm.volumeId, targetPath: warm.targetPath });
  });
  afterAll(async () => {
    await h?.close();
  });
  afterEach(() => h.vault.clearFaults());

  async function publish(className: string, fault?: Fault): Promise<{ result: 'ok' | { code: number; details: string }; log: string[]; ms: number }> {
    const name = className === 'user' ? 'db-user' : className === 'password' ? 'db-password' : className === 'missing' ? 'db-missing' : 'other-secret';
    if (fault) h.vault.injectFault({ path: new RegExp(`^/secrets/${name}/`), ...fault });
    const since = Date.now();
    const v = await h.volume({ className });
    let result: 'ok' | { code: number; details: string } = 'ok';
    try {
      await h.client.publish(v.request);
      expect((await readFile(join(v.targetPath, name))).length).toBeGreaterThan(0);
      await h.client.unpublish({ volumeId: v.volumeId, targetPath: v.targetPath });
    } catch (err) {
      result = err as { code: number; details: string };
    }
    return { result, log: outcomes(h, name, since), ms: Date.now() - since };
  }

  it('429 with Retry-After: waits as told, then succeeds', async () => {
    const r = await publish('user', { status: 429, retryAfterSeconds: 1, times: 2 });
    expect(r.result).toBe('ok');
    expect(r.log).toEqual(['429', '429', 'served']);
    expect(r.ms).toBeGreaterThanOrEqual(1900);
  });

  it('429 without Retry-After is retried too (with backoff)', async () => {
    const r = await publish('user', { status: 429, times: 1 });
    expect(r.result).toBe('ok');
    expect(r.log).toEqual(['429', 'served']);
  });

  it('500s are retried', async () => {
    const r = await publish('user', { status: 500, times: 2 });
    expect(r.result).toBe('ok');
    expect(r.log).toEqual(['500', '500', 'served']);
  });

  it('a reset connection is retried', async () => {
    const r = await publish('user', { reset: true, times: 1 });
    expect(r.result).toBe('ok');
    expect(r.log).toEqual(['reset', 'served']);
  });

  it('a request with no answer within --vault-request-timeout is abandoned and retried', async () => {
    const r = await publish('user', { delayMs: 1500, times: 1 });
    expect(r.result).toBe('ok');
    expect(r.log).toEqual(['delayed', 'served']);
    expect(r.ms).toBeLessThan(1500);
  });

  it('404 and 403 are final: one request, NOT_FOUND and PERMISSION_DENIED', async () => {
    const missing = await publish('missing');
    expect(missing.result).toMatchObject({ code: status.NOT_FOUND });
    expect(missing.log).toEqual(['served']);
    const forbidden = await publish('forbidden');
    expect(forbidden.result).toMatchObject({ code: status.PERMISSION_DENIED });
    expect(forbidden.log).toEqual(['served']);
  });

  it('a vault that keeps failing: --vault-max-attempts requests, then UNAVAILABLE naming object and status', async () => {
    const r = await publish('user', { status: 503, times: 100 });
    expect(r.log).toEqual(['503', '503', '503', '503', '503']);
    expect(r.result).toMatchObject({ code: status.UNAVAILABLE });
    expect((r.result as { details: string }).details).toContain('secret "db-user": HTTP 503');
  });

  it('a 429 for one pod holds back the other pods\' requests to that vault host', async () => {
    const since = Date.now();
    const first = publish('user', { status: 429, retryAfterSeconds: 2, times: 1 });
    const throttled = () => h.vault.vaultLog.find((r) => r.outcome === '429' && r.at >= since);
    for (let i = 0; i < 200 && !throttled(); i++) await new Promise((r) => setTimeout(r, 10));
    const throttledAt = throttled()!.at;
    const second = await publish('password');
    expect(second.result).toBe('ok');
    const servedAt = h.vault.vaultLog.filter((r) => r.path.startsWith('/secrets/db-password/') && r.at > throttledAt)[0]!.at;
    expect(servedAt - throttledAt).toBeGreaterThanOrEqual(1900);
    expect((await first).result).toBe('ok');
  });
});

describe.skipIf(!isRoot)('the publish deadline', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ publishDeadline: '2s' });
    await h.writeClass('user', h.vaultParameters([{ objectName: 'db-user' }]));
  });
  afterAll(async () => {
    await h?.close();
  });

  it('gives up at once when Key Vault asks to wait past the deadline, leaving nothing behind', async () => {
    h.vault.injectFault({ path: /^\/secrets\/db-user\//, status: 429, retryAfterSeconds: 30, times: 10 });
    const started = Date.now();
    const v = await h.volume({ className: 'user' });
    const err = await rpcError(h.client.publish(v.request));
    expect(Date.now() - started).toBeLessThan(5000);
    expect(err.code).toBe(status.UNAVAILABLE);
    expect(err.details).toMatch(/secret "db-user": HTTP 429/);
  });
});

/**
 * Finding 10f: a 429 with `Retry-After: 86400` paused the vault host node-wide for a day. The pause
 * is capped (--vault-max-retry-after) and never waited past a publish's deadline.
 */
describe.skipIf(!isRoot)('a huge Retry-After does not freeze the vault host', () => {
  const DAY_SECONDS = 86_400;

  describe('the host pause is capped by --vault-max-retry-after', () => {
    let h: Harness;
    beforeAll(async () => {
      h = await startHarness({ vaultMaxRetryAfter: '1s', publishDeadline: '30s' });
      await h.writeClass('user', h.vaultParameters([{ objectName: 'db-user' }]));
      await h.writeClass('password', h.vaultParameters([{ objectName: 'db-password' }]));
    });
    afterAll(async () => {
      await h?.close();
    });

    it('after a one-day Retry-After, both the throttled pod and another pod of that host publish after the ceiling', async () => {
      const since = Date.now();
      h.vault.injectFault({ path: /^\/secrets\/db-user\//, status: 429, retryAfterSeconds: DAY_SECONDS, times: 1 });
      const a = await h.volume({ className: 'user' });
      const first = h.client.publish(a.request);
      const throttled = () => h.vault.vaultLog.some((r) => r.outcome === '429' && r.at >= since);
      for (let i = 0; i < 500 && !throttled(); i++) await new Promise((r) => setTimeout(r, 10));
      expect(throttled()).toBe(true);
      const b = await h.volume({ className: 'password' });
      // Held for the ceiling, not the day: these resolve well inside the test's timeout.
      await h.client.publish(b.request);
      await first;
      expect(outcomes(h, 'db-user', since)).toEqual(['429', 'served']);
      expect(outcomes(h, 'db-password', since)).toEqual(['served']);
      expect(await readFile(join(a.targetPath, 'db-user'), 'utf8')).toBe('app');
      expect((await readFile(join(b.targetPath, 'db-password'))).length).toBeGreaterThan(0);
    });
  });

  describe('a publish whose deadline comes before the (capped) pause fails at once', () => {
    let h: Harness;
    beforeAll(async () => {
      h = await startHarness({ publishDeadline: '3s' }); // the default ceiling, 60s, outlasts it
      await h.writeClass('user', h.vaultParameters([{ objectName: 'db-user' }]));
      await h.writeClass('password', h.vaultParameters([{ objectName: 'db-password' }]));
    });
    afterAll(async () => {
      await h?.close();
    });

    it('the throttled pod and another pod of that host get UNAVAILABLE saying Key Vault asked to wait; the driver keeps serving', async () => {
      const since = Date.now();
      h.vault.injectFault({ path: /^\/secrets\/db-user\//, status: 429, retryAfterSeconds: DAY_SECONDS, times: 1 });
      const a = await h.volume({ className: 'user' });
      const first = await rpcError(h.client.publish(a.request));
      expect(first.code).toBe(status.UNAVAILABLE);
      expect(first.details).toMatch(/secret "db-user": HTTP 429: Key Vault asked to wait 60 s \(Retry-After, capped by --vault-max-retry-after\), past this publish's deadline; will retry$/);

      const b = await h.volume({ className: 'password' });
      const second = await rpcError(h.client.publish(b.request));
      expect(second.code).toBe(status.UNAVAILABLE);
      expect(second.details).toMatch(/secret "db-password": Key Vault asked to wait \d+ s \(Retry-After, capped by --vault-max-retry-after\)/);
      // Refused without a request: the host is paused, and the pause outlasts this publish.
      expect(outcomes(h, 'db-password', since)).toEqual([]);
      expect(outcomes(h, 'db-user', since)).toEqual(['429']);
      expect((await h.client.probe()).ready?.value).toBe(true);
    });
  });
});
