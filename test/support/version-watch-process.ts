import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'podvault.js');

/** One JSON log line of the watcher. */
export type LogLine = Record<string, unknown> & { msg?: string };

export interface WatchProcess {
  child: ChildProcess;
  /** Every JSON line the watcher wrote, parsed (non-JSON lines as `{ msg: line }`). */
  lines: LogLine[];
  holderIdentity: string;
  metricsUrl?: string;
  /** The `version poll complete` lines so far. */
  polls(): LogLine[];
  stop(): Promise<void>;
  kill9(): Promise<void>;
}

/**
 * `podvault version-watch <args>` through the real CLI entry point, started once it logs that it
 * started; `env` adds the identity (AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET).
 */
export async function startWatchProcess(args: string[], env: Record<string, string>, timeoutMs = 20_000): Promise<WatchProcess> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env };
  for (const name of ['AZURE_CLIENT_ID', 'AZURE_TENANT_ID', 'AZURE_FEDERATED_TOKEN_FILE', 'AZURE_CLIENT_SECRET', 'POD_NAME', 'POD_NAMESPACE']) delete childEnv[name];
  const child = spawn(process.execPath, [BIN, 'version-watch', ...args], { env: { ...childEnv, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: LogLine[] = [];
  const started = new Promise<LogLine>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`version-watch did not start:\n${lines.map((l) => JSON.stringify(l)).join('\n')}`)), timeoutMs);
    let buffered = '';
    const feed = (chunk: Buffer): void => {
      buffered += chunk.toString();
      const parts = buffered.split('\n');
      buffered = parts.pop() ?? '';
      for (const text of parts) {
        let line: LogLine;
        try {
          line = JSON.parse(text) as LogLine;
        } catch {
          line = { msg: text };
        }
        lines.push(line);
        if (line.msg === 'podvault version-watch started') {
          clearTimeout(timer);
          resolve(line);
        }
      }
    };
    child.stdout?.on('data', feed);
    child.stderr?.on('data', feed);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`version-watch exited ${code}:\n${lines.map((l) => JSON.stringify(l)).join('\n')}`));
    });
  });
  const first = await started;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    child,
    lines,
    holderIdentity: String(first.holderIdentity),
    ...(typeof first.metricsUrl === 'string' ? { metricsUrl: first.metricsUrl } : {}),
    polls: () => lines.filter((l) => l.msg === 'version poll complete'),
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      await exited;
    },
    kill9: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      await exited;
    },
  };
}
