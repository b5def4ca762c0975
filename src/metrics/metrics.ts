import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * The driver's Prometheus metrics (prom-client), one registry per driver. Labels carry outcomes
 * and status codes only: never pod names, object names or anything a tenant wrote.
 */
export class DriverMetrics {
  readonly registry = new Registry();
  readonly publishes = new Counter({ name: 'podvault_publishes_total', help: 'NodePublishVolume calls that mounted a volume, by result (ok or gRPC code)', labelNames: ['result'], registers: [this.registry] });
  readonly unpublishes = new Counter({ name: 'podvault_unpublishes_total', help: 'NodeUnpublishVolume calls, by result', labelNames: ['result'], registers: [this.registry] });
  readonly rotations = new Counter({ name: 'podvault_rotations_total', help: 'Refetches of mounted volumes, by result (rotated, unchanged, failed)', labelNames: ['result'], registers: [this.registry] });
  readonly rotationObjects = new Counter({ name: 'podvault_rotation_objects_total', help: 'Objects of rotations with --version-watch, by where their bytes came from (vault: fetched as the pod; mounted: version still current, kept)', labelNames: ['from'], registers: [this.registry] });
  readonly podStatusWrites = new Counter({ name: 'podvault_pod_status_writes_total', help: 'SecretProviderClassPodStatus writes, by result (written, removed, failed)', labelNames: ['result'], registers: [this.registry] });
  readonly vaultRequests = new Counter({ name: 'podvault_vault_requests_total', help: 'Key Vault requests, by HTTP status (or error kind)', labelNames: ['status'], registers: [this.registry] });
  readonly publishDuration = new Histogram({
    name: 'podvault_publish_duration_seconds',
    help: 'NodePublishVolume duration, republishes included',
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
    registers: [this.registry],
  });
  readonly mounts: Gauge;

  constructor(mountedVolumes: () => number) {
    this.mounts = new Gauge({
      name: 'podvault_mounted_volumes',
      help: 'Volumes this driver has mounted',
      registers: [this.registry],
      collect() {
        this.set(mountedVolumes());
      },
    });
    collectDefaultMetrics({ register: this.registry, prefix: 'podvault_' });
  }
}
