import { Option } from 'commander';
import type { Command } from 'commander';

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** The identity and vault flags of `seal`, `render` and `reseal` (see src/sealed/cli-identity.ts). */
export function withVaultFlags(command: Command): Command {
  return command
    .option('--config-file-path <file>', 'call Key Vault as the identity of this azure.json (service principal or managed identity, as kms-plugin reads it); default: AZURE_TENANT_ID+AZURE_CLIENT_ID+AZURE_CLIENT_SECRET, then workload identity (AZURE_FEDERATED_TOKEN_FILE), then the Azure CLI login')
    .option('--user-assigned-identity-id <client-id>', 'call Key Vault as this user-assigned managed identity')
    .option('--use-managed-identity', 'call Key Vault as the machine\'s system-assigned managed identity')
    .option('--imds-endpoint <url>', 'IMDS base URL for managed identities')
    .option('--cloud <name>', 'AzurePublicCloud (default), AzureUSGovernmentCloud or AzureChinaCloud: its vault domain is trusted')
    .option('--allow-vault <origin>', 'also trust this vault origin outside the cloud\'s vault domain, e.g. a dev-vault https://127.0.0.1:8443 (repeatable); podvault sends its Key Vault token to no other host', collect)
    .option('--ca-file <file>', 'extra PEM CA bundle trusted for Entra ID and Key Vault (private CA, dev-vault)')
    .option('--authority-host <url>', 'Entra ID authority host overriding the cloud\'s, https://host[:port]')
    .addOption(new Option('--log-level <level>', 'log level of the lines written to stderr').choices(['trace', 'debug', 'info', 'warn', 'error']).default('warn'));
}

/** `-o OUT` and `-i`, as s5 render has them. */
export function withOutputFlags(command: Command): Command {
  return command.option('-o, --output <file>', 'write the result to this file (atomically) instead of stdout').option('-i, --in-place', 'replace FILE with the result (atomically; untouched on any failure)');
}

/** s5's aes key: the environment is the safe way; the flag puts the key in argv (visible in ps and /proc). */
export function withS5KeyFlag(command: Command): Command {
  return command.option('--s5-aes-key <hex>', 's5 aes engine key (hex). Prefer S5_AES_KEY: this flag puts the key in argv, where other users of the machine can read it (ps, /proc)');
}
