import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { packageRoot } from '../package-info.js';

export const DEMO_SEED = join(packageRoot, 'examples', 'dev-vault.yaml');

export function devVaultCommand(): Command {
  return new Command('dev-vault')
    .description('serve a local Azure Key Vault data plane and Entra ID token endpoint over HTTPS (for local runs, the demo and tests)')
    .option('--seed <file>', 'YAML seed: tenantId, clients (clientId, clientSecret, read globs), secrets', DEMO_SEED)
    .option('--host <ip>', 'address to listen on', '127.0.0.1')
    .option('--port <n>', 'port to listen on (0 picks a free one)', '0')
    .option('--latency-ms <n>', 'delay added to every answer, to imitate a remote vault', '0')
    .option('--ca-out <file>', 'where to write the PEM of the generated CA', join(tmpdir(), 'podvault-dev-vault-ca.pem'))
    .action(async (flags: { seed: string; host: string; port: string; latencyMs: string; caOut: string }) => {
      const [{ startDevVault }, { loadSeedFile }] = await Promise.all([import('../devvault/server.js'), import('../devvault/seed.js')]);
      const seed = await loadSeedFile(flags.seed);
      const vault = await startDevVault({ seed, host: flags.host, port: Number(flags.port), latencyMs: Number(flags.latencyMs) });
      await writeFile(flags.caOut, vault.caPem, { mode: 0o644 });
      const proxy = vault.tokenProxy;
      const proxyCaFile = `${flags.caOut}.token-proxy.pem`;
      if (proxy) await writeFile(proxyCaFile, proxy.caPem, { mode: 0o644 });
      // One JSON line a script can read; the CA is public material, the seed's secrets are not printed.
      const tokenProxy = proxy ? { tokenProxy: { url: proxy.url, sniName: proxy.sniName, caFile: proxyCaFile } } : {};
      process.stdout.write(`${JSON.stringify({ vaultUri: vault.url, authorityHost: vault.url, tenantId: vault.tenantId, caFile: flags.caOut, ...tokenProxy })}\n`);
      await new Promise<void>((resolve) => {
        const stop = (): void => void vault.close().then(resolve);
        process.once('SIGTERM', stop);
        process.once('SIGINT', stop);
      });
    });
}
