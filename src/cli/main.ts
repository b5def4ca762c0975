import { Command } from 'commander';
import { packageVersion } from '../package-info.js';
import { demoCommand } from './demo-command.js';
import { devVaultCommand } from './dev-vault-command.js';
import { driverCommand } from './driver-command.js';
import { etcdAuditCommand } from './etcd-audit-command.js';
import { flexVolumeCommand } from './flexvolume-command.js';
import { kmsPluginCommand } from './kms-plugin-command.js';
import { renderCommand } from './render-command.js';
import { resealCommand } from './reseal-command.js';
import { sealCommand } from './seal-command.js';
import { versionWatchCommand } from './version-watch-command.js';

/**
 * `podvault <command>`: the one CLI behind the README, the manifests and the tests. Each command
 * module loads what it runs only inside its action, so `--help` and small commands start fast and
 * the driver does not carry the demo's or dev-vault's code.
 */
export async function main(argv: readonly string[]): Promise<void> {
  const program = new Command('podvault')
    .description('Kubernetes CSI node driver: Azure Key Vault objects on a per-pod tmpfs, fetched as the pod\'s own identity')
    .version(packageVersion)
    .showHelpAfterError()
    .addCommand(driverCommand())
    .addCommand(devVaultCommand())
    .addCommand(demoCommand())
    .addCommand(flexVolumeCommand())
    .addCommand(etcdAuditCommand())
    .addCommand(kmsPluginCommand())
    .addCommand(sealCommand())
    .addCommand(renderCommand())
    .addCommand(resealCommand())
    .addCommand(versionWatchCommand());
  await program.parseAsync([...argv]);
}
