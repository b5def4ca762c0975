import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { KmsClient } from '../../src/kms/kms-client.js';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'podvault.js');

export interface PluginProcess {
  child: ChildProcess;
  /** Every line the plugin wrote, stdout and stderr. */
  output: string[];
  endpoint: string;
  metricsUrl?: string;
  client: KmsClient;
  stop(): Promise<void>;
}

/** `podvault kms-plugin <args>` through the real CLI entry point, ready once it logs that it serves. */
export async function startPluginProcess(args: string[], timeoutMs = 20_000): Promise<PluginProcess> {
  const env = { ...process.env };
  for (const name of ['AZURE_CLIENT_ID', 'AZURE_TENANT_ID', 'AZURE_FEDERATED_TOKEN_FILE', 'AZURE_CLIENT_SECRET']) delete env[name];
  const child = spawn(process.execPath, [BIN, 'kms-plugin', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  const ready = new Promise<{ endpoint: string; metricsUrl?: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`kms-plugin did not start:\n${output.join('\n')}`)), timeoutMs);
    const onLine = (line: string): void => {
      output.push(line);
      if (line.includes('podvault kms-plugin serving')) {
        clearTimeout(timer);
        const entry = JSON.parse(line) as { endpoint: string; metricsUrl?: string };
        resolve(entry);
      }
    };
    let buffered = '';
    const feed = (chunk: Buffer): void => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      lines.forEach(onLine);
    };
    child.stdout?.on('data', feed);
    child.stderr?.on('data', feed);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`kms-plugin exited ${code}:\n${output.join('\n')}`));
    });
  });
  const { endpoint, metricsUrl } = await ready;
  const client = new KmsClient(endpoint);
  return {
    child,
    output,
    endpoint,
    ...(metricsUrl ? { metricsUrl } : {}),
    client,
    stop: async () => {
      client.close();
      if (child.exitCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** Polls `probe` every 100 ms until it gives a value (errors count as no value yet). */
export async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
