import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { request as httpRequest } from 'node:http';
import type { IncomingMessage } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// A throwaway single-member etcd for the etcd-audit tests, its bench and `podvault demo --kms`.

export interface EtcdTls {
  /** PEM of the CA that signed the server certificate (and the client certificates etcd accepts). */
  caPem: string;
  certPem: string;
  keyPem: string;
  /** Require a client certificate signed by the CA (etcd's --client-cert-auth). */
  clientCertAuth: boolean;
}

export interface EtcdServer {
  /** `http://127.0.0.1:<port>` or, with TLS, `https://127.0.0.1:<port>`. */
  endpoint: string;
  dataDir: string;
  stop(): Promise<void>;
}

/** A free loopback port: bound, read and released (etcd binds it a moment later). */
async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  server.close();
  await once(server, 'close');
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/**
 * Starts a real single-member etcd on free loopback ports (client and peer) with its data in a
 * fresh temp directory, waits until /health answers true, and returns a handle whose stop() ends
 * the process and removes the directory. Its output is kept and shown only if it fails to start.
 */
export async function startEtcd(options: { bin: string; tls?: EtcdTls }): Promise<EtcdServer> {
  const dataDir = await mkdtemp(join(tmpdir(), 'podvault-etcd-'));
  const [clientPort, peerPort] = [await freePort(), await freePort()];
  const scheme = options.tls ? 'https' : 'http';
  const endpoint = `${scheme}://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const args = [
    '--name', 'audit-test',
    '--data-dir', join(dataDir, 'data'),
    '--listen-client-urls', endpoint,
    '--advertise-client-urls', endpoint,
    '--listen-peer-urls', peer,
    '--initial-advertise-peer-urls', peer,
    '--initial-cluster', `audit-test=${peer}`,
    '--initial-cluster-state', 'new',
    '--log-level', 'warn',
  ];
  if (options.tls) {
    const { caPem, certPem, keyPem, clientCertAuth } = options.tls;
    await writeFile(join(dataDir, 'ca.pem'), caPem);
    await writeFile(join(dataDir, 'server.pem'), certPem);
    await writeFile(join(dataDir, 'server-key.pem'), keyPem, { mode: 0o600 });
    args.push('--cert-file', join(dataDir, 'server.pem'), '--key-file', join(dataDir, 'server-key.pem'), '--trusted-ca-file', join(dataDir, 'ca.pem'));
    if (clientCertAuth) args.push('--client-cert-auth');
  }
  // etcd reads ETCD_* variables as flags: start it without the caller's environment.
  const child = spawn(options.bin, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
  let output = '';
  const keep = (chunk: Buffer): void => {
    output = (output + chunk.toString()).slice(-8000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const stop = async (): Promise<void> => {
    await stopProcess(child);
    await rm(dataDir, { recursive: true, force: true });
  };
  try {
    await waitHealthy(endpoint, child, options.tls);
  } catch (err) {
    await stop();
    throw new Error(`etcd did not start: ${err instanceof Error ? err.message : String(err)}\n${output}`);
  }
  return { endpoint, dataDir, stop };
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

async function waitHealthy(endpoint: string, child: ChildProcess, tls: EtcdTls | undefined): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`exited with ${child.exitCode}`);
    if (await healthy(endpoint, tls)) return;
    if (Date.now() > deadline) throw new Error('no healthy answer within 20 s');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** GET /health: `{"health":"true"}` once the member has a leader (over TLS, presenting the server's own certificate, which has clientAuth). */
function healthy(endpoint: string, tls: EtcdTls | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    const url = `${endpoint}/health`;
    const onResponse = (res: IncomingMessage): void => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve(res.statusCode === 200 && body.includes('"true"')));
      res.on('error', () => resolve(false));
    };
    const req = tls ? httpsRequest(url, { ca: tls.caPem, cert: tls.certPem, key: tls.keyPem, timeout: 1000 }, onResponse) : httpRequest(url, { timeout: 1000 }, onResponse);
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}
