import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';

/**
 * The version watch's Prometheus metrics. Labels carry results and status codes only: never a
 * vault, class or object name (those are the tenants').
 */
export class WatchMetrics {
  readonly registry = new Registry();
  readonly polls = new Counter({ name: 'podvault_version_watch_polls_total', help: 'Poll rounds, by result (complete, waiting-for-classes)', labelNames: ['result'], registers: [this.registry] });
  readonly requests = new Counter({ name: 'podvault_version_watch_vault_requests_total', help: 'HTTP requests to Key Vault (metadata only: versions listings, key and certificate properties), by HTTP status or error code', labelNames: ['result'], registers: [this.registry] });
  readonly objects = new Gauge({ name: 'podvault_version_watch_objects', help: 'Distinct unpinned objects the classes name that the last poll covered', registers: [this.registry] });
  readonly unavailable = new Gauge({ name: 'podvault_version_watch_unavailable_objects', help: 'Objects whose version the last poll could not learn', registers: [this.registry] });
  readonly leader = new Gauge({ name: 'podvault_version_watch_leader', help: '1 while this replica holds the Lease', registers: [this.registry] });
  readonly writes = new Counter({ name: 'podvault_version_watch_writes_total', help: 'VaultObjectVersions status writes, by result (changed, heartbeat, failed, too-large)', labelNames: ['result'], registers: [this.registry] });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'podvault_version_watch_' });
  }
}
