import { Command } from 'commander';

export function demoCommand(): Command {
  return new Command('demo')
    .description('end to end on this machine: dev-vault + standalone driver + a NodePublishVolume over the real socket, then unpublish (--kms: the KMS plugin, a key rotation, old data still readable)')
    .option('--kms', 'show the KMS v2 plugin instead: an apiserver-like client encrypting a Secret, a key rotation, the old Secret still readable')
    .action(async (flags: { kms?: boolean }) => {
      const say = (line: string): void => void process.stdout.write(`${line}\n`);
      if (flags.kms) await (await import('./demo-kms.js')).runKmsDemo(say);
      else await (await import('./demo.js')).runDemo(say);
    });
}
