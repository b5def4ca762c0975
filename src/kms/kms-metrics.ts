import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * The plugin's Prometheus metrics. Labels carry operations, outcomes and the current key
 * version (a public id), never request uids, plaintext sizes or anything kube-apiserver sent.
 */
export class KmsMetrics {
  readonly registry = new Registry();
  readonly operations = new Counter({ name: 'podvault_kms_operations_total', help: 'KMS v2 calls answered, by operation (status, encrypt, decrypt) and result (OK or gRPC code)', labelNames: ['operation', 'result'], registers: [this.registry] });
  readonly vaultRequests = new Counter({ name: 'podvault_kms_vault_requests_total', help: 'Key Vault requests, by operation (wrapKey, unwrapKey, getKey) and outcome (ok, HTTP status or error kind)', labelNames: ['operation', 'outcome'], registers: [this.registry] });
  readonly vaultLatency = new Histogram({
    name: 'podvault_kms_vault_request_duration_seconds',
    help: 'Key Vault request latency, retries included, by operation',
    labelNames: ['operation'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3],
    registers: [this.registry],
  });
  readonly healthChecks = new Counter({ name: 'podvault_kms_health_checks_total', help: 'Background wrap/unwrap round trips, by result (ok, failed)', labelNames: ['result'], registers: [this.registry] });
  readonly healthy = new Gauge({ name: 'podvault_kms_healthy', help: '1 when the last round trip with Key Vault succeeded recently', registers: [this.registry] });
  readonly keyVersion = new Gauge({ name: 'podvault_kms_key_version_info', help: 'The key version Encrypt uses (value 1), with its KMS key_id', labelNames: ['version', 'key_id'], registers: [this.registry] });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'podvault_kms_' });
  }

  setKeyVersion(version: string, keyId: string): void {
    this.keyVersion.reset();
    this.keyVersion.set({ version, key_id: keyId }, 1);
  }
}
