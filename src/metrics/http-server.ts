import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export interface HealthServer {
  url: string;
  close(): Promise<void>;
}

/** A /healthz answer other than the default (the process serves): the KMS plugin's key health. */
export type HealthCheck = () => { ok: boolean; text: string };

/**
 * `--metrics-addr`: Prometheus metrics on /metrics, liveness on /healthz (the process serves, or
 * what `healthz` says) and readiness on /readyz (the socket serves). Nothing else is served.
 */
export async function startHealthServer(address: string, metrics: { registry: Registry }, ready: () => boolean, healthz?: HealthCheck): Promise<HealthServer> {
  const match = /^(.*):(\d+)$/.exec(address);
  if (!match) throw new Error(`--metrics-addr ${JSON.stringify(address)} must be host:port or :port`);
  const host = match[1] === '' ? '0.0.0.0' : (match[1] ?? '').replace(/^\[|\]$/g, '');
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET') {
      res.writeHead(405).end();
    } else if (path === '/metrics') {
      metrics.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
        () => res.writeHead(500).end('metrics unavailable\n'),
      );
    } else if (path === '/healthz') {
      const health = healthz?.() ?? { ok: true, text: 'ok' };
      res.writeHead(health.ok ? 200 : 503, { 'content-type': 'text/plain' }).end(`${health.text}\n`);
    } else if (path === '/readyz') {
      const ok = ready();
      res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(ok ? 'ready\n' : 'not ready\n');
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(match[2]), host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
