/** The Azure clouds the provider's `cloudName` parameter names (matched case-insensitively). */
export interface AzureCloud {
  name: string;
  /** DNS suffix of vaults: `<name>.<vaultSuffix>`. */
  vaultSuffix: string;
  /** Entra ID authority host. */
  authorityHost: string;
  /** The Key Vault resource: the only audience podvault asks Entra ID tokens for (`<resource>/.default`). */
  keyVaultResource: string;
}

export const AZURE_CLOUDS: readonly AzureCloud[] = [
  { name: 'AzurePublicCloud', vaultSuffix: 'vault.azure.net', authorityHost: 'https://login.microsoftonline.com', keyVaultResource: 'https://vault.azure.net' },
  { name: 'AzureUSGovernmentCloud', vaultSuffix: 'vault.usgovcloudapi.net', authorityHost: 'https://login.microsoftonline.us', keyVaultResource: 'https://vault.usgovcloudapi.net' },
  { name: 'AzureChinaCloud', vaultSuffix: 'vault.azure.cn', authorityHost: 'https://login.chinacloudapi.cn', keyVaultResource: 'https://vault.azure.cn' },
];

/** The cloud for a `cloudName` value; empty means the public cloud. Undefined when unknown. */
export function findCloud(cloudName: string): AzureCloud | undefined {
  if (cloudName === '') return AZURE_CLOUDS[0];
  return AZURE_CLOUDS.find((c) => c.name.toLowerCase() === cloudName.toLowerCase());
}
