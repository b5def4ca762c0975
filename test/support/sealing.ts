import { ClientSecretCredential } from '@azure/identity';
import type { DevVault } from '../../src/devvault/server.js';
import { createLogger } from '../../src/log.js';
import { AZURE_CLOUDS } from '../../src/providers/azure/clouds.js';
import { KeyVaultDataKeys, sealValues } from '../../src/sealed/index.js';

/**
 * Seal `values` under one data key with `keyName` of `vault` (`podvault seal --file`), as a key
 * administrator `clientId` with the crypto-officer role would.
 */
export async function sealAsAdmin(vault: DevVault, keyName: string, values: string[], clientId: string): Promise<string[]> {
  const clientSecret = `${clientId}-secret-0001`;
  vault.store.putClient({ clientId, clientSecret, managedIdentity: false, read: [], crypto: [{ role: 'crypto-officer', keys: ['*'] }] });
  const keys = new KeyVaultDataKeys({
    credential: new ClientSecretCredential(vault.tenantId, clientId, clientSecret, { authorityHost: vault.url, disableInstanceDiscovery: true, tlsOptions: { ca: vault.caPem } }),
    settings: { caPem: vault.caPem, authorityHost: vault.url, allowedVaultOrigins: [vault.url], maxRetries: 0 },
    cloud: AZURE_CLOUDS[0]!,
    allowedOrigins: [vault.url],
    log: createLogger({ level: 'silent' }),
    maxAttempts: 1,
  });
  return (await sealValues(values, `${vault.url}/keys/${keyName}`, keys)).markers;
}
