import { describeCause } from '../errors/describe-cause.js';
import { loadKubeConfig } from '../kube/kube-class-source.js';
import { buildCredential, describeIdentity } from '../kms/kms-identity.js';
import type { Logger } from '../log.js';
import { startHealthServer } from '../metrics/http-server.js';
import type { HealthServer } from '../metrics/http-server.js';
import { sleep } from '../providers/azure/host-limiter.js';
import { mapLimit } from '../util/map-limit.js';
import { LeaseElector } from './lease-elector.js';
import { ObjectDiscovery } from './object-discovery.js';
import type { WatchedObject } from './object-discovery.js';
import { TokenBucket } from './token-bucket.js';
import { VersionPoller } from './version-poller.js';
import type { PollResult } from './version-poller.js';
import { VersionsPublisher } from './versions-publisher.js';
import type { WatchConfig } from './watch-config.js';
import { WatchMetrics } from './watch-metrics.js';

export interface RunningVersionWatch {
  metricsUrl?: string;
  stop(): Promise<void>;
}

/**
 * `podvault version-watch`: competes for the Lease; while it leads (and only then) it watches the
 * cluster's SecretProviderClasses, polls each distinct unpinned object's current version once per
 * interval with metadata calls, and publishes them per vault. A follower holds no class watch and
 * makes no vault request: its only traffic is one Lease read per retry period.
 */
export async function startVersionWatch(config: WatchConfig, log: Logger): Promise<RunningVersionWatch> {
  const kubeConfig = loadKubeConfig(config.kubeconfig);
  const metrics = new WatchMetrics();
  const credential = await buildCredential(config.identity, config.sdk, config.cloud);
  const bucket = new TokenBucket(config.maxRequestsPerSecond);
  const poller = new VersionPoller({
    credential,
    cloud: config.cloud,
    settings: config.sdk,
    bucket,
    log,
    maxInFlightPerHost: config.vaultMaxInFlight,
    requestTimeoutMs: config.vaultRequestTimeoutMs,
    maxAttempts: config.vaultMaxAttempts,
    onRequest: (result) => metrics.requests.inc({ result }),
  });
  let leading: Promise<void> | undefined;
  const elector: LeaseElector = new LeaseElector({
    kubeConfig,
    namespace: config.namespace,
    name: config.leaseName,
    identity: config.holderIdentity,
    ...config.lease,
    log,
    onStartedLeading: (signal) => {
      metrics.leader.set(1);
      leading = lead(signal);
    },
    onStoppedLeading: () => metrics.leader.set(0),
  });
  const publisher = new VersionsPublisher({
    kubeConfig,
    namespace: config.namespace,
    intervalMs: config.intervalMs,
    identity: config.holderIdentity,
    mayWrite: () => elector.isLeader(),
    log,
    onWrite: (result) => metrics.writes.inc({ result }),
  });

  let overLimitLogged = false;
  async function pollRound(discovery: ObjectDiscovery, signal: AbortSignal, deadline: number): Promise<void> {
    const snapshot = await discovery.snapshot();
    if (!snapshot) {
      metrics.polls.inc({ result: 'waiting-for-classes' });
      log.warn('the SecretProviderClass watch is not live yet: no poll this interval');
      return;
    }
    if (snapshot.overLimit > 0 && !overLimitLogged) log.warn({ polled: snapshot.objects.length, leftOut: snapshot.overLimit, flag: '--max-objects' }, 'more distinct objects than --max-objects: the rest are not polled (their nodes refetch periodically)');
    overLimitLogged = snapshot.overLimit > 0;
    const sentBefore = poller.requestsSent;
    const byVault = new Map<string, WatchedObject[]>();
    for (const o of snapshot.objects) byVault.set(o.vaultUrl, [...(byVault.get(o.vaultUrl) ?? []), o]);
    let unavailable = 0;
    let written = 0;
    for (const [vaultUrl, objects] of byVault) {
      const results = await mapLimit(objects, config.vaultMaxInFlight, async (object): Promise<{ object: WatchedObject; result: PollResult }> => ({ object, result: await poller.poll(object, deadline, signal) }));
      signal.throwIfAborted();
      unavailable += results.filter((r) => 'unavailable' in r.result).length;
      // The heartbeat is timed by round starts (one interval apart), not by when a round's writes land.
      if (await publisher.publish(await publisher.statusFor(vaultUrl, results, Date.now()), deadline - config.intervalMs)) written += 1;
    }
    metrics.objects.set(snapshot.objects.length);
    metrics.unavailable.set(unavailable);
    metrics.polls.inc({ result: 'complete' });
    log.info({ objects: snapshot.objects.length, vaults: byVault.size, classes: snapshot.classes, malformedClasses: snapshot.malformed.length, refusedObjects: snapshot.refused, unavailable, written, requests: poller.requestsSent - sentBefore, ms: Date.now() - (deadline - config.intervalMs) }, 'version poll complete');
  }

  async function lead(signal: AbortSignal): Promise<void> {
    publisher.reset();
    const discovery = new ObjectDiscovery({ kubeConfig, cloud: config.cloud, allowedVaultOrigins: config.sdk.allowedVaultOrigins, maxObjects: config.maxObjects, log });
    discovery.start();
    try {
      while (!signal.aborted) {
        const started = Date.now();
        try {
          await pollRound(discovery, signal, started + config.intervalMs);
        } catch (err) {
          if (signal.aborted) break;
          log.error({ cause: describeCause(err) }, 'version poll failed');
        }
        await sleep(Math.max(0, started + config.intervalMs - Date.now()), signal).catch(() => undefined);
      }
    } finally {
      await discovery.stop();
    }
  }

  elector.start();
  let health: HealthServer | undefined;
  if (config.metricsAddr) health = await startHealthServer(config.metricsAddr, metrics, () => true);
  log.info({ identity: describeIdentity(config.identity), holderIdentity: config.holderIdentity, lease: `${config.namespace}/${config.leaseName}`, intervalMs: config.intervalMs, ...(health ? { metricsUrl: health.url } : {}) }, 'podvault version-watch started');
  return {
    ...(health ? { metricsUrl: health.url } : {}),
    stop: async () => {
      await elector.stop();
      await leading;
      await health?.close();
    },
  };
}
