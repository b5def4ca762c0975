import { chmod, readFile } from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import type { DriverConfig } from '../config/driver-config.js';
import type { Logger } from '../log.js';
import type { ClassSource } from '../kube/secret-provider-class.js';
import { StandaloneClassSource } from '../kube/standalone-class-source.js';
import { StandaloneDirectory } from '../kube/standalone-directory.js';
import { StandaloneIdentityObjects } from '../kube/standalone-identity-objects.js';
import { StandaloneConfigMaps } from '../kube/standalone-config-maps.js';
import type { ConfigMapSource } from '../kube/config-maps.js';
import type { IdentityObjects } from '../identity/crds.js';
import { TokenProxyClient } from '../identity/token-proxy.js';
import { IdentityResolver } from '../identity/identity-resolver.js';
import { PodTokenVerifier } from '../identity/pod-token.js';
import { FlexVolumePods } from '../identity/flexvolume-pod.js';
import type { ServiceAccountKeySource } from '../identity/pod-token.js';
import { FileServiceAccountKeys } from '../kube/service-account-keys.js';
import { KeyVaultProvider } from '../providers/azure/keyvault-provider.js';
import { ProviderRegistry } from '../providers/provider.js';
import type { MountedReuse } from '../providers/provider.js';
import type { PublishedVersions } from '../version-watch/published-versions.js';
import { unimplemented as unimplementedError } from '../errors/podvault-error.js';
import { IdentityService } from './identity-service.js';
import { MountEngine } from './mount-engine.js';
import { NodeVolumeBudget } from './node-volume-budget.js';
import { TmpfsMounter } from './mounter.js';
import type { Mounter } from './mounter.js';
import { NodeService } from './node-service.js';
import { PublishGate } from './publish-gate.js';
import { StateStore } from './state-store.js';
import { loadCsiProto } from './proto.js';
import { DriverMetrics } from '../metrics/metrics.js';
import { startHealthServer } from '../metrics/http-server.js';
import type { Histogram } from 'prom-client';
import { LogEventRecorder } from '../events/event-recorder.js';
import type { EventRecorder } from '../events/event-recorder.js';
import type { PodStatusSink } from '../kube/pod-status.js';
import { prepareSocketPath, removeSocket, shutdownServer, socketPathOf } from './socket.js';
import { unary } from './unary.js';
import { pkcs12Converter } from '../untrusted/pkcs12-converter.js';

/** Largest gRPC request the driver accepts on its socket. */
export const MAX_REQUEST_BYTES = 2 * 1024 * 1024;

export interface StartOptions {
  config: DriverConfig;
  log: Logger;
  /** Defaults to real tmpfs mounts; only the demo passes its /dev/shm fallback. */
  mounter?: Mounter;
}

export interface RunningDriver {
  socketPath: string;
  /** Base URL of the metrics and health server, when --metrics-addr is set. */
  metricsUrl?: string;
  node: NodeService;
  /** Stop accepting calls, let in-flight ones finish (up to `graceMs`), remove the socket. */
  stop(graceMs?: number): Promise<void>;
}

/** Where classes and identity objects come from: one standalone directory, or the Kubernetes API. */
async function clusterSources(config: DriverConfig, log: Logger, versionsChanged: (vaultUrl: string) => void): Promise<{ classes: ClassSource; objects: IdentityObjects; configMaps: ConfigMapSource; keys?: ServiceAccountKeySource; events: EventRecorder; podStatus?: PodStatusSink; versions?: Pick<MountedReuse, 'currentVersion'>; stop?: () => Promise<void> }> {
  const fileKeys = config.serviceAccountJwks && config.serviceAccountIssuer ? new FileServiceAccountKeys(config.serviceAccountJwks, config.serviceAccountIssuer) : undefined;
  if (config.classSource.kind === 'standalone') {
    const directory = new StandaloneDirectory(config.classSource.dir);
    return { classes: new StandaloneClassSource(directory), objects: new StandaloneIdentityObjects(directory), configMaps: new StandaloneConfigMaps(directory), events: new LogEventRecorder(log), ...(fileKeys ? { keys: fileKeys } : {}) };
  }
  // Loaded only when used: @kubernetes/client-node alone adds about 70 MiB of resident memory,
  // which a standalone driver (the demo, the benchmark, FlexVolume-only nodes) need not carry.
  const [{ KubeClassSource, loadKubeConfig }, { KubeIdentityObjects }, { KubeServiceAccountKeys }, { KubeEventRecorder }, { KubePodStatusWriter }, { KubeCaches }, { KubeConfigMaps }] = await Promise.all([
    import('../kube/kube-class-source.js'),
    import('../kube/kube-identity-objects.js'),
    import('../kube/kube-service-account-keys.js'),
    import('../kube/kube-event-recorder.js'),
    import('../kube/kube-pod-status-writer.js'),
    import('../kube/kube-caches.js'),
    import('../kube/kube-config-maps.js'),
  ]);
  const kubeConfig = loadKubeConfig(config.classSource.kubeconfig);
  // Watch-backed caches: after their first LIST a publish reads nothing from the API server.
  const caches = new KubeCaches({ kubeConfig, nodeName: config.nodeId, maxClassBytes: config.maxClassBytes, log: log.child({ component: 'api-cache' }) });
  caches.start();
  // Its watch starts at the first template publish (a cluster without templates lists no ConfigMaps).
  const configMaps = new KubeConfigMaps(kubeConfig, log.child({ component: 'api-cache' }));
  let versions: PublishedVersions | undefined;
  if (config.versionWatch) {
    const { PublishedVersions } = await import('../version-watch/published-versions.js');
    versions = new PublishedVersions({ kubeConfig, namespace: config.versionWatch.namespace, log: log.child({ component: 'api-cache' }), onChange: versionsChanged });
    versions.start();
    log.info({ namespace: config.versionWatch.namespace }, 'version watch on: rotations fetch only the objects whose published version moved');
  }
  return {
    stop: async () => {
      await Promise.all([caches.stop(), configMaps.stop(), versions?.stop()]);
    },
    ...(versions ? { versions } : {}),
    classes: new KubeClassSource(kubeConfig, caches.classes),
    configMaps,
    objects: new KubeIdentityObjects(kubeConfig, caches),
    keys: fileKeys ?? new KubeServiceAccountKeys(kubeConfig),
    events: new KubeEventRecorder(kubeConfig, config.nodeId, log),
    podStatus: new KubePodStatusWriter(kubeConfig, config.nodeId),
  };
}

const unimplemented = (method: string) => async (): Promise<never> => {
  throw unimplementedError(`${method} is not implemented: podvault serves ephemeral inline volumes only`);
};

async function timed<T>(histogram: Histogram, work: () => Promise<T>): Promise<T> {
  const end = histogram.startTimer();
  try {
    return await work();
  } finally {
    end();
  }
}

/** The driver's mounter, and one line at start saying what mounts (and why mount(8), when it does). */
function tmpfsMounter(config: DriverConfig, log: Logger): TmpfsMounter {
  const mounter = new TmpfsMounter({ mountUtility: config.mountUtility });
  if (mounter.fallbackReason === undefined) log.info({ mounter: mounter.via }, 'mounting volumes in-process with mount(2)');
  else if (config.mountUtility) log.info({ mounter: mounter.via }, 'mounting volumes with mount(8)/umount(8) processes (--mount-utility)');
  else log.warn({ mounter: mounter.via, reason: mounter.fallbackReason }, 'podvault\'s mount(2) addon is not available; mounting volumes with mount(8)/umount(8) processes');
  return mounter;
}

/** Assemble the driver from its config and serve CSI on the configured unix socket. */
export async function startDriver(options: StartOptions): Promise<RunningDriver> {
  const { config, log } = options;
  const caPem = config.caFile ? await readFile(config.caFile, 'utf8') : undefined;
  // The version watch's changes reach the node service once it exists (it is built from these sources).
  const watchRef: { changed: (vaultUrl: string) => void } = { changed: () => undefined };
  const { classes, objects, configMaps, keys, events, podStatus, versions, stop: stopSources } = await clusterSources(config, log, (vaultUrl) => watchRef.changed(vaultUrl));
  if (config.imdsEndpoint) {
    // The Azure SDK's managed identity credential takes its IMDS address only from this variable
    // (read at its first token request), so the flag is handed over here, once, at start.
    process.env.AZURE_POD_IDENTITY_AUTHORITY_HOST = config.imdsEndpoint;
  }
  pkcs12Converter.configure({ maxIterations: config.pkcs12MaxIterations, timeLimitMs: config.pkcs12TimeLimitMs });
  const metricsRef = { volumes: (): number => 0 };
  const metrics = new DriverMetrics(() => metricsRef.volumes());
  const settings = { authorityHost: config.authorityHost, caPem, allowedVaultOrigins: config.allowedVaultOrigins, allowedCloudEnvFiles: config.allowedCloudEnvFiles, maxRetries: 2 };
  const engine = new MountEngine({ mounter: options.mounter ?? tmpfsMounter(config, log), tmpfsSizeBytes: config.tmpfsSizeBytes, budget: new NodeVolumeBudget(config.maxNodeVolumeBytes) });
  const providers = new ProviderRegistry([
    new KeyVaultProvider({
      settings,
      identities: new IdentityResolver({
        objects,
        settings,
        clusterWideBindings: config.clusterWideBindings,
        allowNodeIdentity: config.allowNodeIdentity,
        managedIdentityGrants: config.managedIdentityGrants,
        nodeManagedIdentities: config.nodeManagedIdentities,
        ...(config.azureTokenProxy ? { tokenProxy: new TokenProxyClient(config.azureTokenProxy, caPem) } : {}),
      }),
      fetchConcurrency: config.fetchConcurrency,
      maxInFlightPerHost: config.vaultMaxInFlight,
      retry: {
        maxAttempts: config.vaultMaxAttempts,
        baseDelayMs: 250,
        maxDelayMs: 8000,
        requestTimeoutMs: config.vaultRequestTimeoutMs,
        maxRetryAfterMs: config.vaultMaxRetryAfterMs,
        onAttempt: (outcome) => metrics.vaultRequests.inc({ status: outcome }),
      },
      publishDeadlineMs: config.publishDeadlineMs,
      limits: { maxClassBytes: config.maxClassBytes, maxObjects: config.maxClassObjects, maxObjectBytes: config.maxObjectBytes, maxVolumeBytes: config.tmpfsSizeBytes },
      certificateFiles: { writeCertAndKeyInSeparateFiles: config.writeCertAndKeyInSeparateFiles, constructPEMChain: config.constructPEMChain },
      configMaps,
    }),
  ]);
  const node = new NodeService({
    nodeId: config.nodeId,
    kubeletDir: config.kubeletDir,
    classes,
    providers,
    engine,
    events,
    ...(keys ? { podTokens: new PodTokenVerifier(keys, config.podTokenAudience) } : {}),
    flexVolumePods: new FlexVolumePods(objects, config.nodeId),
    requirePodToken: config.requirePodToken,
    rotationIntervalMs: config.rotationIntervalMs,
    ...(config.stateDir ? { state: new StateStore(config.stateDir, log) } : {}),
    gate: new PublishGate({ slots: config.maxConcurrentPublishes, queue: config.maxQueuedPublishes, maxWaitMs: config.publishDeadlineMs }),
    ...(podStatus ? { podStatus } : {}),
    ...(versions ? { versions } : {}),
    observe: {
      rotationObjects: (from, count) => metrics.rotationObjects.inc({ from }, count),
      podStatus: (result) => metrics.podStatusWrites.inc({ result }),
      publish: (result) => metrics.publishes.inc({ result }),
      rotation: (result) => metrics.rotations.inc({ result }),
      unpublish: (result) => metrics.unpublishes.inc({ result }),
    },
  });
  metricsRef.volumes = () => node.volumes.size;
  watchRef.changed = (vaultUrl) => void node.versionsChanged(vaultUrl, log.child({ loop: 'version-watch' }));
  const identity = new IdentityService(config.driverName);

  const proto = loadCsiProto();
  // A kubelet request is a volume context, a few tokens and at most one Secret (itself at most
  // 1 MiB in Kubernetes): anything larger is refused by grpc-js before it is parsed.
  const server = new grpc.Server({ 'grpc.max_receive_message_length': MAX_REQUEST_BYTES });
  server.addService(proto.csi.v1.Identity.service, {
    GetPluginInfo: unary('GetPluginInfo', () => identity.getPluginInfo(), log),
    GetPluginCapabilities: unary('GetPluginCapabilities', () => identity.getPluginCapabilities(), log),
    Probe: unary('Probe', () => identity.probe(), log),
  });
  server.addService(proto.csi.v1.Node.service, {
    NodePublishVolume: unary('NodePublishVolume', (req, ctx) => timed(metrics.publishDuration, () => node.publish(req, ctx)), log),
    NodeUnpublishVolume: unary('NodeUnpublishVolume', (req, ctx) => node.unpublish(req, ctx), log),
    NodeGetCapabilities: unary('NodeGetCapabilities', () => node.getCapabilities(), log),
    NodeGetInfo: unary('NodeGetInfo', () => node.getInfo(), log),
    NodeStageVolume: unary('NodeStageVolume', unimplemented('NodeStageVolume'), log),
    NodeUnstageVolume: unary('NodeUnstageVolume', unimplemented('NodeUnstageVolume'), log),
    NodeGetVolumeStats: unary('NodeGetVolumeStats', unimplemented('NodeGetVolumeStats'), log),
    NodeExpandVolume: unary('NodeExpandVolume', unimplemented('NodeExpandVolume'), log),
  });

  const socketPath = socketPathOf(config.endpoint);
  try {
    await node.recover(log);
    await prepareSocketPath(socketPath);
    await new Promise<void>((resolve, reject) => {
      server.bindAsync(`unix://${socketPath}`, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve()));
    });
    await chmod(socketPath, 0o660);
  } catch (err) {
    await stopSources?.(); // the caches' watches would keep a failed start's process alive
    throw err;
  }
  identity.markReady();
  const health = config.metricsAddr ? await startHealthServer(config.metricsAddr, metrics, () => identity.isReady()) : undefined;
  // Volumes the kubelet does not republish (FlexVolume) rotate on this timer.
  const rotationTimer =
    config.rotationIntervalMs > 0
      ? setInterval(() => void node.rotateStale(log.child({ loop: 'rotation' })), Math.max(1000, Math.min(config.rotationIntervalMs / 2, 30_000)))
      : undefined;
  rotationTimer?.unref();
  log.info(
    { endpoint: config.endpoint, driver: config.driverName, nodeId: config.nodeId, classes: classes.description, storage: engine.description, kubeletDir: config.kubeletDir },
    'podvault driver serving',
  );

  return {
    socketPath,
    metricsUrl: health?.url,
    node,
    async stop(graceMs = 10_000): Promise<void> {
      if (rotationTimer) clearInterval(rotationTimer);
      await health?.close();
      await shutdownServer(server, graceMs);
      await removeSocket(socketPath);
      await stopSources?.();
      log.info('podvault driver stopped');
    },
  };
}
