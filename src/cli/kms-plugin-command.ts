import { Command, Option } from 'commander';
import {
  DEFAULT_HEALTH_INTERVAL,
  DEFAULT_KMS_LISTEN,
  DEFAULT_KMS_TIMEOUT,
  DEFAULT_KMS_VAULT_MAX_ATTEMPTS,
  DEFAULT_KMS_VAULT_MAX_IN_FLIGHT,
  DEFAULT_KMS_VAULT_REQUEST_TIMEOUT,
} from '../kms/kms-config.js';
import type { KmsFlags } from '../kms/kms-config.js';

const bool = (value: string | undefined): boolean => value === undefined || !['false', '0', 'f', 'False', 'FALSE'].includes(value);

/**
 * `podvault kms-plugin`: kube-apiserver's KMS v2 plugin with a Key Vault key. The Azure
 * plugin's flags (Azure/kubernetes-kms) are accepted with their meaning, so its static pod's
 * arguments migrate unchanged; secrets come only from files (azure.json), never from argv.
 */
export function kmsPluginCommand(): Command {
  return new Command('kms-plugin')
    .description('serve the Kubernetes KMS v2 API on a unix socket, wrapping kube-apiserver\'s seeds with a Key Vault key (wrapKey/unwrapKey, RSA-OAEP-256)')
    .option('--listen <uri>', `socket: unix:///path or @abstract-name (default ${DEFAULT_KMS_LISTEN})`)
    .option('--listen-addr <uri>', 'the Azure plugin\'s name for --listen')
    .option('--key-id <url>', 'the key: https://<vault>/keys/<name> follows its current version (rotation without downtime); .../<version> pins one')
    .option('--keyvault-name <name>', 'Azure plugin flag: the vault\'s name (with --key-name; the vault domain comes from the cloud in azure.json)')
    .option('--key-name <name>', 'Azure plugin flag: the key\'s name')
    .option('--key-version <version>', 'Azure plugin flag: pin this version (absent or empty: follow the current version)')
    .option('--managed-hsm [bool]', 'Azure plugin flag: the vault is a Managed HSM (<name>.managedhsm.azure.net)', bool)
    .option('--config-file-path <file>', 'azure.json with the identity (tenantId, aadClientId, aadClientSecret, useManagedIdentityExtension, userAssignedIdentityID, aadClientCertPath) and cloud; default /etc/kubernetes/azure.json when it exists')
    .option('--user-assigned-identity-id <client-id>', 'call Key Vault as this user-assigned managed identity')
    .option('--use-managed-identity', 'call Key Vault as the node\'s system-assigned managed identity')
    .option('--imds-endpoint <url>', 'IMDS base URL for managed identities (default: the Azure instance metadata service)')
    .option('--cloud <name>', 'AzurePublicCloud, AzureUSGovernmentCloud or AzureChinaCloud (default: azure.json\'s cloud, else public)')
    .option('--ca-file <file>', 'extra PEM CA bundle trusted for Entra ID and Key Vault (private CA, dev-vault)')
    .option('--authority-host <url>', 'Entra ID authority host overriding the cloud\'s, https://host[:port]')
    .option('--health-interval <duration>', `a real wrap/unwrap round trip with Key Vault this often; Status answers from its result (default ${DEFAULT_HEALTH_INTERVAL})`)
    .option('--timeout <duration>', `Encrypt and Decrypt answer within this long or fail (default ${DEFAULT_KMS_TIMEOUT}, kube-apiserver's)`)
    .option('--vault-request-timeout <duration>', `each vault request is abandoned and retried after this long (default ${DEFAULT_KMS_VAULT_REQUEST_TIMEOUT})`)
    .option('--vault-max-attempts <n>', `attempts per vault request on 429, 5xx, resets and timeouts (default ${DEFAULT_KMS_VAULT_MAX_ATTEMPTS})`)
    .option('--vault-max-in-flight <n>', `vault requests in flight at once (default ${DEFAULT_KMS_VAULT_MAX_IN_FLIGHT})`)
    .option('--metrics-addr <host:port>', 'serve Prometheus metrics on /metrics and the key\'s health on /healthz (a bare port, as the Azure plugin takes it, means :port)')
    .option('--healthz-port <port>', 'Azure plugin flag: serve /healthz (and /metrics) on :port when --metrics-addr is absent')
    .option('--healthz-path <path>', 'Azure plugin flag: only /healthz is accepted')
    .option('--healthz-timeout <duration>', 'Azure plugin flag, accepted and unused: /healthz answers from the background round trip')
    .option('--metrics-backend <name>', 'Azure plugin flag: only prometheus')
    .option('--log-format-json [bool]', 'Azure plugin flag, accepted: podvault always logs JSON lines')
    .option('--proxy-mode [bool]', 'Azure plugin flag: refused (no egress proxy mode)', bool)
    .option('--proxy-address <host>', 'Azure plugin flag, accepted only without --proxy-mode')
    .option('--proxy-port <port>', 'Azure plugin flag, accepted only without --proxy-mode')
    .option('-v, --verbosity <n>', 'Azure plugin flag (klog level), accepted; use --log-level')
    .addOption(new Option('--log-level <level>', 'log level').choices(['trace', 'debug', 'info', 'warn', 'error']).default('info'))
    .action(async (flags: KmsFlags) => {
      const [{ buildKmsConfig }, { startKmsPlugin }, { createLogger }] = await Promise.all([import('../kms/kms-config.js'), import('../kms/plugin-server.js'), import('../log.js')]);
      const config = await buildKmsConfig(flags, process.env);
      const log = createLogger({ level: config.logLevel });
      const plugin = await startKmsPlugin(config, log);
      await new Promise<void>((resolve) => {
        const stop = (signal: string): void => {
          log.info({ signal }, 'stopping');
          plugin.stop().then(resolve, resolve);
        };
        process.once('SIGTERM', () => stop('SIGTERM'));
        process.once('SIGINT', () => stop('SIGINT'));
      });
    });
}
