import { Command } from 'commander';

export function demoCommand(): Command {
  return new Command('demo')
    .description('end to end on this machine: dev-vault + standalone driver + a NodePublishVolume over the real socket, then unpublish')
    .action(async () => {
      const { runDemo } = await import('./demo.js');
      await runDemo((line) => process.stdout.write(`${line}\n`));
    });
}
