import { Command } from 'commander';
import { packageVersion } from '../package-info.js';
import { demoCommand } from './demo-command.js';
import { devVaultCommand } from './dev-vault-command.js';
import { driverCommand } from './driver-command.js';

/** `podvault <command>`: the one CLI behind the README, the manifests and the tests. */
export async function main(argv: readonly string[]): Promise<void> {
  const program = new Command('podvault')
    .description('Kubernetes CSI node driver: Azure Key Vault objects on a per-pod tmpfs, fetched as the pod\'s own identity')
    .version(packageVersion)
    .showHelpAfterError()
    .addCommand(driverCommand())
    .addCommand(devVaultCommand())
    .addCommand(demoCommand());
  await program.parseAsync([...argv]);
}
