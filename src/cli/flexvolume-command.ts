import { Command } from 'commander';

/**
 * `podvault flexvolume init|mount|unmount`: the kubelet's FlexVolume driver, installed as
 * /usr/libexec/kubernetes/kubelet-plugins/volume/exec/podvault~keyvault/keyvault. The kubelet
 * reads stdout and stderr together, so this prints exactly one JSON object and nothing else.
 */
export function flexVolumeCommand(): Command {
  return new Command('flexvolume')
    .description('FlexVolume driver for clusters on the retired kubernetes-keyvault-flexvol: init | mount <dir> <json> | unmount <dir>')
    .argument('<operation>', 'init, mount or unmount')
    .argument('[args...]', 'the kubelet\'s arguments')
    .allowUnknownOption()
    .action(async (operation: string, args: string[]) => {
      const { runFlexVolume, DEFAULT_FLEX_ENDPOINT } = await import('../flexvolume/shim.js');
      let result;
      try {
        result = await runFlexVolume([operation, ...args], process.env.PODVAULT_CSI_ENDPOINT || DEFAULT_FLEX_ENDPOINT);
      } catch {
        result = { status: 'Failure' as const, message: 'podvault: internal error' };
      }
      process.stdout.write(`${JSON.stringify(result)}\n`);
    });
}
