import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NAMESPACE, startWatchFixture, until } from './support/version-watch-fixture.js';
import type { WatchFixture } from './support/version-watch-fixture.js';
import { startWatchProcess } from './support/version-watch-process.js';
import type { WatchProcess } from './support/version-watch-process.js';

const LEASE_S = 3;
const TIMINGS = ['--interval', '1s', '--lease-duration', `${LEASE_S}s`, '--renew-deadline', '2s', '--retry-period', '250ms'];

/** The Lease's spec as the double holds it. */
function lease(fx: WatchFixture): { holderIdentity?: string; leaseTransitions?: number; leaseDurationSeconds?: number; renewTime?: string; acquireTime?: string } | undefined {
  return (fx.api.get('leases', 'coordination.k8s.io/v1', NAMESPACE, 'podvault-version-watch') as { spec?: Record<string, never> } | undefined)?.spec;
}

describe('version-watch leader election (two real processes, one Lease)', () => {
  let fx: WatchFixture;
  const procs: WatchProcess[] = [];
  beforeAll(async () => {
    fx = await startWatchFixture();
    fx.putClass('team-a', 'app', [{ objectName: 'db-password', objectType: 'secret' }, { objectName: 'signing', objectType: 'key' }]);
  });
  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    await fx?.close();
  });

  it('one replica leads and writes, the other only reads the Lease; after kill -9 of the leader the other takes over within the lease duration', async () => {
    procs.push(await startWatchProcess(fx.args([...TIMINGS, '--identity', 'replica-a']), fx.env));
    procs.push(await startWatchProcess(fx.args([...TIMINGS, '--identity', 'replica-b']), fx.env));
    const [a, b] = procs as [WatchProcess, WatchProcess];
    const first = await until('a Lease holder', () => lease(fx)?.holderIdentity || undefined, 10_000);
    const leader = first === a.holderIdentity ? a : b;
    const follower = leader === a ? b : a;
    expect([a.holderIdentity, b.holderIdentity]).toContain(first);
    // MicroTime on the wire: RFC 3339 with six fractional digits, as the API server writes it.
    expect(lease(fx)?.renewTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    expect(lease(fx)?.leaseDurationSeconds).toBe(LEASE_S);

    await until('three polls by the leader', () => (leader.polls().length >= 3 ? true : undefined), 10_000);
    // Exactly one writes: the status names the leader, the follower never polled, and only one
    // class watch is open (the follower holds none).
    expect(fx.status()?.writer).toBe(leader.holderIdentity);
    expect(follower.polls()).toEqual([]);
    expect(follower.lines.some((l) => l.msg === 'became the leader')).toBe(false);
    expect(fx.api.openWatches.filter((p) => p.endsWith('/secretproviderclasses'))).toHaveLength(1);
    const transitions = lease(fx)?.leaseTransitions ?? 0;
    const since = fx.status()?.versions.secrets['db-password']?.since;

    const killedAt = Date.now();
    await leader.kill9();
    const taken = await until('the follower to take the Lease', () => (lease(fx)?.holderIdentity === follower.holderIdentity ? Date.now() : undefined), 15_000);
    const takeoverMs = taken - killedAt;
    // The follower counts the lease duration from when it last saw the record change (at most one
    // retry period after the leader's last renewal), then acquires at its next attempt.
    expect(takeoverMs).toBeLessThan(LEASE_S * 1000 + 2 * 250 + 500);
    expect(takeoverMs).toBeGreaterThan(LEASE_S * 1000 - 2 * 250 - 300);
    expect(lease(fx)?.leaseTransitions).toBe(transitions + 1);
    await until('the new leader to publish', () => (fx.status()?.writer === follower.holderIdentity ? true : undefined), 5_000);
    // It starts from the object the old leader left: the versions' `since` carries over.
    expect(fx.status()?.versions.secrets['db-password']?.since).toBe(since);
    console.log(`version-watch takeover after kill -9: ${takeoverMs} ms (lease ${LEASE_S} s, retry 250 ms)`);
  });

  it('a leader stopped with SIGTERM releases the Lease: a new replica takes over at its next attempt', async () => {
    const current = procs.find((p) => p.child.exitCode === null && p.child.signalCode === null);
    expect(current).toBeDefined();
    const next = await startWatchProcess(fx.args([...TIMINGS, '--identity', 'replica-c']), fx.env);
    procs.push(next);
    await new Promise((r) => setTimeout(r, 600));
    expect(lease(fx)?.holderIdentity).toBe(current?.holderIdentity);
    const stoppedAt = Date.now();
    await current?.stop();
    const taken = await until('replica-c to take the Lease', () => (lease(fx)?.holderIdentity === next.holderIdentity ? Date.now() : undefined), 10_000);
    expect(taken - stoppedAt).toBeLessThan(LEASE_S * 1000);
    console.log(`version-watch takeover after SIGTERM (lease released): ${taken - stoppedAt} ms`);
    expect(current?.lines.some((l) => l.msg === 'released the lease')).toBe(true);
  });

  it('a leader that finds another holder in the Lease stops writing and drops its class watch at once', async () => {
    const leader = procs.at(-1) as WatchProcess;
    await until('replica-c to publish', () => (fx.status()?.writer === leader.holderIdentity ? true : undefined), 5_000);
    const stored = fx.api.get('leases', 'coordination.k8s.io/v1', NAMESPACE, 'podvault-version-watch');
    const now = new Date().toISOString().replace('Z', '000Z');
    // Another elector (say, a replica of a newer release) holds it now, for a minute.
    fx.api.put('leases', { ...(stored as NonNullable<typeof stored>), spec: { holderIdentity: 'someone-else', leaseDurationSeconds: 60, acquireTime: now, renewTime: now, leaseTransitions: 9 } });
    const stolenAt = Date.now();
    await until('replica-c to stop leading', () => (leader.lines.some((l) => l.msg === 'stopped leading') ? true : undefined), 5_000);
    const stoppedAt = Date.now();
    expect(stoppedAt - stolenAt).toBeLessThan(1500);
    const statusWrites = (): number => fx.api.requests.filter((r) => r.startsWith('PUT ') && r.includes('/vaultobjectversions/') && r.includes('/status')).length;
    const writes = statusWrites();
    await new Promise((r) => setTimeout(r, 2500));
    expect(statusWrites()).toBe(writes);
    expect(fx.api.openWatches.filter((p) => p.endsWith('/secretproviderclasses'))).toEqual([]);
    expect((fx.api.get('leases', 'coordination.k8s.io/v1', NAMESPACE, 'podvault-version-watch') as { spec?: { holderIdentity?: string } }).spec?.holderIdentity).toBe('someone-else');
  });
});
