import { chmod } from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import { prepareSocketPath, removeSocket, shutdownServer } from '../driver/socket.js';
import type { Logger } from '../log.js';
import { startHealthServer } from '../metrics/http-server.js';
import { HostLimiter } from '../providers/azure/host-limiter.js';
import { describeKeyRef } from './key-ref.js';
import { KeyHealth } from './key-health.js';
import { KeyVaultWrapper } from './key-vault-wrapper.js';
import type { KmsConfig } from './kms-config.js';
import { buildCredential, describeIdentity } from './kms-identity.js';
import { KmsMetrics } from './kms-metrics.js';
import { KmsService } from './kms-service.js';
import { kmsUnary } from './kms-unary.js';
import { describeListenAddress, grpcAddressOf } from './listen-address.js';
import { loadKmsProto } from './proto.js';
import type { DecryptRequest, DecryptResponse, EncryptRequest, EncryptResponse, StatusResponse } from './proto.js';

/** kube-apiserver's requests are a few KiB (a 1 KiB ciphertext, ≤ 32 KiB of annotations). */
const MAX_REQUEST_BYTES = 64 * 1024;

export interface RunningKmsPlugin {
  /** `unix:///path` or `unix:///@name`. */
  endpoint: string;
  metricsUrl?: string;
  /** Run a health round trip now (tests, and the demo after a rotation). */
  checkNow(): Promise<void>;
  stop(graceMs?: number): Promise<void>;
}

/**
 * `podvault kms-plugin`: the KMS v2 service on a unix socket, its background health round trip,
 * and (with --metrics-addr) /metrics and /healthz. The first round trip runs before the socket is
 * served, so the first Status already reports the current key_id (or why there is none).
 */
export async function startKmsPlugin(config: KmsConfig, log: Logger): Promise<RunningKmsPlugin> {
  // The managed identity credential takes its IMDS address only from the environment.
  if (config.imdsEndpoint) process.env.AZURE_POD_IDENTITY_AUTHORITY_HOST = config.imdsEndpoint;
  const metrics = new KmsMetrics();
  const credential = await buildCredential(config.identity, config.sdk, config.cloud);
  const wrapper = new KeyVaultWrapper({
    key: config.key,
    credential,
    settings: config.sdk,
    keyVaultResource: config.cloud.keyVaultResource,
    verifyChallengeResource: config.verifyChallengeResource,
    limiter: new HostLimiter(config.vaultMaxInFlight, 1000),
    requestTimeoutMs: config.vaultRequestTimeoutMs,
    maxAttempts: config.vaultMaxAttempts,
    metrics,
    log: log.child({ component: 'key-vault' }),
  });
  const health = new KeyHealth(wrapper, config.key, config.healthIntervalMs, config.timeoutMs, metrics, log.child({ component: 'health' }));
  const service = new KmsService(config.key, health, wrapper);

  const proto = loadKmsProto();
  const server = new grpc.Server({ 'grpc.max_receive_message_length': MAX_REQUEST_BYTES });
  server.addService(proto.v2.KeyManagementService.service, {
    Status: kmsUnary<{ uid?: string }, StatusResponse>('Status', async () => service.status(), config.timeoutMs, log, metrics),
    Encrypt: kmsUnary<EncryptRequest, EncryptResponse>('Encrypt', (req, call) => service.encrypt(req, call), config.timeoutMs, log, metrics),
    Decrypt: kmsUnary<DecryptRequest, DecryptResponse>('Decrypt', (req, call) => service.decrypt(req, call), config.timeoutMs, log, metrics),
  } satisfies grpc.UntypedServiceImplementation);

  await health.start();
  const socketPath = config.listen.kind === 'path' ? config.listen.path : undefined;
  if (socketPath) await prepareSocketPath(socketPath);
  await new Promise<void>((resolve, reject) => {
    server.bindAsync(grpcAddressOf(config.listen), grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve()));
  });
  // Only the socket's owner (root, as kube-apiserver runs) may connect.
  if (socketPath) await chmod(socketPath, 0o600);
  const http = config.metricsAddr
    ? await startHealthServer(config.metricsAddr, metrics, () => true, () => {
        const { healthz } = health.status();
        return { ok: healthz === 'ok', text: healthz };
      })
    : undefined;
  const endpoint = describeListenAddress(config.listen);
  log.info({ endpoint, metricsUrl: http?.url, key: describeKeyRef(config.key), identity: describeIdentity(config.identity), healthIntervalS: config.healthIntervalMs / 1000, ...health.status() }, 'podvault kms-plugin serving');

  return {
    endpoint,
    metricsUrl: http?.url,
    checkNow: () => health.checkNow(),
    async stop(graceMs = 5000): Promise<void> {
      health.stop();
      await http?.close();
      await shutdownServer(server, graceMs);
      if (socketPath) await removeSocket(socketPath);
      log.info('podvault kms-plugin stopped');
    },
  };
}
