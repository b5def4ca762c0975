import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { stringify } from 'yaml';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DRIVER_NODE_OPTIONS } from '../src/config/driver-config.js';
import { startDevVault } from '../src/devvault/server.js';
import type { DevVault } from '../src/devvault/server.js';
import { parseSeed } from '../src/devvault/seed.js';
import { CsiClient } from '../src/driver/client.js';
import { ephemeralVolume } from '../src/driver/kubelet-volume.js';
import { readMountInfo } from '../src/driver/mountinfo.js';
import { PublishGate } from '../src/driver/publish-gate.js';
import { PodvaultError } from '../src/errors/podvault-error.js';
import { packageRoot } from '../src/package-info.js';
import { HostLimiter, ThrottledError } from '../src/providers/azure/host-limiter.js';
import { CLIENT_ID, CLIENT_SECRET, isRoot, objectsParameter, rpcError, SECRET_VALUES, startHarness, TEST_SEED } from './support/harness.js';
import type { Harness } from './support/harness.js';

/** A Key Vault secret at its maximum size (25 KB). */
const BIG_VALUE = 'v'.repeat(25 * 1024);
const aliases = (n: number) => Array.from({ length: n }, (_, i) => ({ objectName: 'db-big', objectAlias: `copy-${i}` }));

async function rejection(promise: Promise<unknown>): Promise<PodvaultError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof PodvaultError) return err;
    throw err;
  }
  throw new Error('expected a rejection');
}

describe('the publish gate: bounded slots, a bounded queue, waits bounded by the caller', () => {
  const never = new AbortController().signal;

  it('lets `slots` publishes in, queues the next ones in order, refuses beyond the queue naming both flags', async () => {
    const gate = new PublishGate({ slots: 2, queue: 1, maxWaitMs: 60_000 });
    const a = await gate.enter(never);
    const b = await gate.enter(never);
    expect(gate.active).toBe(2);
    const order: string[] = [];
    const c = gate.enter(never).then((leave) => (order.push('c'), leave));
    expect(gate.queued).toBe(1);
    const refused = await rejection(gate.enter(never));
    expect(refused.kind).toBe('resource-exhausted');
    expect(refused.message).toBe('the driver is busy: 2 publishes are fetching and 1 are waiting (--max-concurrent-publishes, --max-queued-publishes); will retry');
    a();
    a(); // releasing twice frees one slot only
    const leaveC = await c;
    expect(order).toEqual(['c']);
    expect(gate.active).toBe(2);
    b();
    leaveC();
    expect(gate.active).toBe(0);
    expect(gate.queued).toBe(0);
  });

  it('a waiter whose caller cancels leaves the queue with the caller\'s reason', async () => {
    const gate = new PublishGate({ slots: 1, queue: 4, maxWaitMs: 60_000 });
    const holder = await gate.enter(never);
    const caller = new AbortController();
    const waiting = gate.enter(caller.signal);
    expect(gate.queued).toBe(1);
    caller.abort(new PodvaultError('cancelled', 'NodePublishVolume cancelled by the caller'));
    const err = await rejection(waiting);
    expect(err.kind).toBe('cancelled');
    expect(gate.queued).toBe(0);
    holder();
    expect(gate.active).toBe(0);
  });

  it('a waiter gives up after maxWaitMs (the publish deadline) with RESOURCE_EXHAUSTED naming the flag', async () => {
    const gate = new PublishGate({ slots: 1, queue: 4, maxWaitMs: 20 });
    const holder = await gate.enter(never);
    const err = await rejection(gate.enter(never));
    expect(err.kind).toBe('resource-exhausted');
    expect(err.message).toMatch(/waited \d+ s for one of 1 publish slots \(--max-concurrent-publishes\)/);
    expect(gate.queued).toBe(0);
    holder();
    expect(gate.active).toBe(0);
  });
});

describe('the host limiter: a Retry-After pause is capped and never waited past a deadline', () => {
  it('a one-day pause is cut to the ceiling, and a caller whose deadline comes first is refused at once', async () => {
    const limiter = new HostLimiter(4, 60_000);
    limiter.pause(86_400_000);
    const err = await limiter.acquire(new AbortController().signal, Date.now() + 1000).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ThrottledError);
    expect((err as ThrottledError).waitMs).toBeLessThanOrEqual(60_000);
    expect((err as ThrottledError).waitMs).toBeGreaterThan(1000);
  });

  it('past the ceiling, requests flow again', async () => {
    const limiter = new HostLimiter(4, 10);
    limiter.pause(86_400_000);
    const release = await limiter.acquire(new AbortController().signal, Date.now() + 60_000);
    release();
  });
});

describe.skipIf(!isRoot)('fetch limits through the driver: each refused with a clear code naming its limit and flag, the driver still serving', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ tmpfsSize: '128Ki', maxObjectSize: '32Ki', maxClassObjects: '6', maxClassSize: '8Ki', maxConcurrentPublishes: '1', maxQueuedPublishes: '0' });
    h.vault.store.setSecret('db-big', BIG_VALUE);
    h.vault.store.setSecret('db-huge', 'h'.repeat(40 * 1024));
    await h.writeClass('app', h.vaultParameters([{ objectName: 'db-password' }]));
  });
  afterAll(async () => {
    await h?.close();
  });
  afterEach(() => h.vault.clearFaults());

  /** The driver still serves a normal publish after the refusal. */
  async function stillServing(): Promise<void> {
    const v = await h.volume({ className: 'app' });
    await h.client.publish(v.request);
    expect(await readFile(join(v.targetPath, 'db-password'), 'utf8')).toBe(SECRET_VALUES.dbPassword);
    await h.client.unpublish({ volumeId: v.volumeId, targetPath: v.targetPath });
  }

  async function refused(className: string): Promise<{ code: number; details: string }> {
    const v = await h.volume({ className });
    const err = await rpcError(h.client.publish(v.request));
    expect(existsSync(v.targetPath)).toBe(false);
    return err;
  }

  it('a class over --max-class-size: INVALID_ARGUMENT naming the class, before any vault request', async () => {
    await h.writeClass('huge-class', h.vaultParameters(aliases(200)));
    const before = h.vault.vaultLog.length;
    const err = await refused('huge-class');
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toMatch(/^SecretProviderClass default\/huge-class: spec.parameters hold \d+ bytes, over the limit of 8192 bytes \(--max-class-size\)$/);
    expect(h.vault.vaultLog.length).toBe(before);
    await stillServing();
  });

  it('more objects than --max-class-objects: INVALID_ARGUMENT, before any vault request', async () => {
    await h.writeClass('many', h.vaultParameters(aliases(7)));
    const before = h.vault.vaultLog.length;
    const err = await refused('many');
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toBe('SecretProviderClass default/many: 7 objects, over the limit of 6 objects per class (--max-class-objects)');
    expect(h.vault.vaultLog.length).toBe(before);
    await stillServing();
  });

  it('more objects than --max-class-objects once objectVersionHistory is expanded: INVALID_ARGUMENT, before any object is fetched', async () => {
    for (let i = 1; i <= 5; i++) h.vault.store.setSecret('db-history', `v${i}`);
    await h.writeClass('history', h.vaultParameters([{ objectName: 'db-user' }, { objectName: 'db-password' }, { objectName: 'db-history', objectVersionHistory: '5' }]));
    const since = Date.now();
    const err = await refused('history');
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toBe('SecretProviderClass default/history: 7 objects after objectVersionHistory expansion, over the limit of 6 objects per class (--max-class-objects)');
    // Only the version listing was asked for; no object was fetched.
    expect(h.vault.vaultLog.filter((r) => r.at >= since).map((r) => r.path)).toEqual(['/secrets/db-history/versions']);
    await stillServing();
  });

  it('an object over --max-object-size: RESOURCE_EXHAUSTED naming object, size and flag', async () => {
    await h.writeClass('huge-object', h.vaultParameters([{ objectName: 'db-huge' }]));
    const err = await refused('huge-object');
    expect(err.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(err.details).toMatch(/secret "db-huge": the object is 40960 bytes, over the limit of 32768 bytes per object \(--max-object-size\)$/);
    await stillServing();
  });

  it('files over --tmpfs-size in all: RESOURCE_EXHAUSTED as they arrive, before anything is written; one vault request for the shared object', async () => {
    await h.writeClass('too-much', h.vaultParameters(aliases(6))); // 6 × 25 KiB > 128 KiB
    const since = Date.now();
    const err = await refused('too-much');
    expect(err.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(err.details).toMatch(/^SecretProviderClass default\/too-much: the volume's files exceed 131072 bytes \(--tmpfs-size\) at secret "db-big" \(file "copy-\d"\); list fewer or smaller objects/);
    expect(h.vault.vaultLog.filter((r) => r.at >= since).map((r) => r.path)).toEqual(['/secrets/db-big/']);
    await stillServing();
  });

  it('a publish beyond --max-concurrent-publishes with the queue full: RESOURCE_EXHAUSTED naming the flags; the holder still publishes', async () => {
    h.vault.injectFault({ path: /^\/secrets\/db-user\//, delayMs: 1500, times: 1 });
    await h.writeClass('user', h.vaultParameters([{ objectName: 'db-user' }]));
    const since = Date.now();
    const holder = await h.volume({ className: 'user' });
    const holding = h.client.publish(holder.request);
    const arrived = () => h.vault.vaultLog.some((r) => r.at >= since && r.outcome === 'delayed');
    for (let i = 0; i < 500 && !arrived(); i++) await new Promise((r) => setTimeout(r, 10));
    expect(arrived()).toBe(true);
    const err = await refused('app');
    expect(err.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(err.details).toBe('the driver is busy: 1 publishes are fetching and 0 are waiting (--max-concurrent-publishes, --max-queued-publishes); will retry');
    await holding;
    expect(await readFile(join(holder.targetPath, 'db-user'), 'utf8')).toBe('app');
    await stillServing();
  });
});
