import { Command, Option } from 'commander';
import { DEFAULT_ROTATION_INTERVAL } from '../config/driver-config.js';
import { DEFAULT_LEASE_NAME, DEFAULT_MAX_OBJECTS, DEFAULT_MAX_REQUESTS_PER_SECOND, DEFAULT_WATCH_NAMESPACE } from '../version-watch/watch-config.js';
import type { WatchFlags } from '../version-watch/watch-config.js';

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/**
 * `podvault version-watch`: the cluster-wide watcher of Key Vault object versions (issue 12),
 * run as a Deployment of two replicas of which the Lease holder works. Its identity needs Key
 * Vault Reader only; a client secret comes from the environment, never from argv.
 */
export function versionWatchCommand(): Command {
  return new Command('version-watch')
    .description('publish the current version of every Key Vault object the cluster\'s SecretProviderClasses name, read with metadata calls only, into VaultObjectVersions objects the drivers watch')
    .option('--kubeconfig <file>', 'kubeconfig file (default: in-cluster configuration)')
    .option('--namespace <ns>', `namespace of the Lease and the VaultObjectVersions objects (default $POD_NAMESPACE, else ${DEFAULT_WATCH_NAMESPACE})`)
    .option('--lease-name <name>', `the coordination.k8s.io Lease the replicas compete for (default ${DEFAULT_LEASE_NAME})`)
    .option('--lease-duration <duration>', 'how long a leader\'s lease lasts after its last renewal (default 15s)')
    .option('--renew-deadline <duration>', 'the leader stops when it could not renew for this long (default 10s)')
    .option('--retry-period <duration>', 'between two attempts to acquire or renew (default 2s)')
    .option('--interval <duration>', `one poll of every object this often (default ${DEFAULT_ROTATION_INTERVAL}, the driver's rotation interval)`)
    .option('--max-requests-per-second <n>', `vault requests per second at most, all vaults together (default ${DEFAULT_MAX_REQUESTS_PER_SECOND})`)
    .option('--max-objects <n>', `distinct objects polled at most; the rest are left to periodic refetch (default ${DEFAULT_MAX_OBJECTS})`)
    .option('--vault-max-in-flight <n>', 'vault requests in flight per vault host (default 4)')
    .option('--vault-request-timeout <duration>', 'each vault request is abandoned and retried after this long (default 10s)')
    .option('--vault-max-attempts <n>', 'attempts per object on 429, 5xx, resets and timeouts (default 4)')
    .option('--allow-vault-uri <origin>', 'a vaultUri origin outside the cloud\'s vault domain that may be polled (repeatable; the driver\'s flag)', collect)
    .option('--cloud <name>', 'AzurePublicCloud, AzureUSGovernmentCloud or AzureChinaCloud (default public)')
    .option('--config-file-path <file>', 'azure.json with the identity (service principal or managed identity)')
    .option('--user-assigned-identity-id <client-id>', 'call Key Vault as this user-assigned managed identity')
    .option('--use-managed-identity', 'call Key Vault as the system-assigned managed identity')
    .option('--ca-file <file>', 'extra PEM CA bundle trusted for Entra ID and Key Vault (private CA, dev-vault)')
    .option('--authority-host <url>', 'Entra ID authority host overriding the cloud\'s, https://host[:port]')
    .option('--identity <name>', 'this replica\'s name in the Lease (default $POD_NAME, else the host name; a random suffix is added)')
    .option('--metrics-addr <host:port>', 'serve Prometheus metrics on /metrics and liveness on /healthz')
    .addOption(new Option('--log-level <level>', 'log level').choices(['trace', 'debug', 'info', 'warn', 'error']).default('info'))
    .action(async (flags: WatchFlags) => {
      const [{ buildWatchConfig }, { startVersionWatch }, { createLogger }] = await Promise.all([import('../version-watch/watch-config.js'), import('../version-watch/version-watch.js'), import('../log.js')]);
      const config = await buildWatchConfig(flags, process.env);
      const log = createLogger({ level: config.logLevel });
      const watch = await startVersionWatch(config, log);
      await new Promise<void>((resolve) => {
        const stop = (signal: string): void => {
          log.info({ signal }, 'stopping');
          watch.stop().then(resolve, resolve);
        };
        process.once('SIGTERM', () => stop('SIGTERM'));
        process.once('SIGINT', () => stop('SIGINT'));
      });
    });
}
