import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DriverFlags } from '../config/driver-config.js';
import type { DevVault } from './server.js';

/**
 * The driver flags that point a standalone driver at a running dev-vault: its CA trusted, its
 * Entra endpoint as the authority, its vault origin allowed, its IMDS endpoint, its token proxy. Writes the CA (a
 * public certificate) into `workDir`. Used by the demo and the tests, so both run the driver the
 * same way.
 */
export async function devVaultDriverFlags(vault: DevVault, workDir: string, dirs: { standalone: string; kubeletDir: string }): Promise<DriverFlags> {
  const caFile = join(workDir, 'dev-vault-ca.pem');
  await writeFile(caFile, vault.caPem);
  const proxy = vault.tokenProxy;
  const proxyCaFile = join(workDir, 'dev-vault-token-proxy-ca.pem');
  if (proxy) await writeFile(proxyCaFile, proxy.caPem);
  return {
    endpoint: `unix://${join(workDir, 'csi.sock')}`,
    standalone: dirs.standalone,
    kubeletDir: dirs.kubeletDir,
    caFile,
    authorityHost: vault.url,
    allowVaultUri: [vault.url],
    imdsEndpoint: vault.imdsUrl,
    ...(proxy ? { azureTokenProxy: proxy.url, azureTokenProxyCaFile: proxyCaFile, azureTokenProxySniName: proxy.sniName } : {}),
  };
}
