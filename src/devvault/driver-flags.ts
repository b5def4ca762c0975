import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DriverFlags } from '../config/driver-config.js';
import type { DevVault } from './server.js';

/**
 * The driver flags that point a standalone driver at a running dev-vault: its CA trusted, its
 * Entra endpoint as the authority, its vault origin allowed, its IMDS endpoint. Writes the CA (a
 * public certificate) into `workDir`. Used by the demo and the tests, so both run the driver the
 * same way.
 */
export async function devVaultDriverFlags(vault: DevVault, workDir: string, dirs: { standalone: string; kubeletDir: string }): Promise<DriverFlags> {
  const caFile = join(workDir, 'dev-vault-ca.pem');
  await writeFile(caFile, vault.caPem);
  return {
    endpoint: `unix://${join(workDir, 'csi.sock')}`,
    standalone: dirs.standalone,
    kubeletDir: dirs.kubeletDir,
    caFile,
    authorityHost: vault.url,
    allowVaultUri: [vault.url],
    imdsEndpoint: vault.imdsUrl,
  };
}
