import { lstat, mkdir, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Server } from '@grpc/grpc-js';

/**
 * The unix socket path of a CSI endpoint: `unix:///csi/csi.sock`, `unix:/csi/csi.sock` or a bare
 * absolute path. Other schemes are refused: the kubelet only speaks to node plugins over unix sockets.
 */
export function socketPathOf(endpoint: string): string {
  const path = endpoint.startsWith('unix://') ? endpoint.slice('unix://'.length) : endpoint.startsWith('unix:') ? endpoint.slice('unix:'.length) : endpoint;
  if (!path.startsWith('/')) throw new Error(`endpoint ${JSON.stringify(endpoint)} must be unix:///absolute/path`);
  return path;
}

/**
 * Prepare the socket path: create its directory and remove a stale socket left by a previous run
 * (grpc-js would fail with EADDRINUSE). Anything else at that path is left alone and refused.
 */
export async function prepareSocketPath(path: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  try {
    const st = await lstat(path);
    if (!st.isSocket()) throw new Error(`${path} exists and is not a socket; refusing to replace it`);
    await unlink(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

export async function removeSocket(path: string): Promise<void> {
  await unlink(path).catch(() => undefined);
}

/** Let in-flight calls finish for up to `graceMs`, then cut the rest off. */
export function shutdownServer(server: Server, graceMs: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, graceMs);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
