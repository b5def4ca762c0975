import { extname } from 'node:path';
import { Command } from 'commander';
import type { VaultFlags } from '../sealed/cli-identity.js';
import { withOutputFlags, withVaultFlags } from './sealed-flags.js';

interface SealFlags extends VaultFlags {
  key: string;
  trim: boolean;
  file?: string;
  path?: string[];
  format?: string;
  output?: string;
  inPlace?: boolean;
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/**
 * `podvault seal [VALUE] --key …`: one `{{pv:…}}` marker, safe to commit; with `--file F --path
 * a.b` the values of a YAML or JSON file sealed in place, under one data key.
 */
export function sealCommand(): Command {
  const command = new Command('seal')
    .description('seal a value (stdin if VALUE is absent) into a {{pv:…}} marker safe to commit: a fresh data key wrapped by a Key Vault RSA key (RSA-OAEP-256), the value in AES-256-GCM. With --file and --path, seal values of a YAML or JSON file in place, all under one data key')
    .argument('[value]', 'the value; prefer stdin: an argument is visible to other users of the machine (ps, /proc) and lands in shell history')
    .requiredOption('--key <url>', 'the Key Vault RSA key: https://<vault>/keys/<name> (its current version; the marker names that version) or .../<version>')
    .option('--no-trim', 'keep leading and trailing whitespace of the value (trimmed by default, as s5 does)')
    .option('--file <file>', 'a YAML or JSON file whose --path values are sealed in place (printed to stdout unless -o or -i)')
    .option('--path <a.b.c>', 'a value of --file to seal: keys and list indexes separated by dots (repeatable)', collect)
    .option('--format <format>', 'yaml or json (default: json for a .json file, else yaml)');
  withVaultFlags(withOutputFlags(command));
  return command.action(async (value: string | undefined, flags: SealFlags) => {
    const [{ sealValues, sealDocument, SealedError }, io, { cliDataKeys }, { parseSealKey }] = await Promise.all([
      import('../sealed/index.js'),
      import('../sealed/text-io.js'),
      import('../sealed/cli-identity.js'),
      import('../sealed/sealed-key-id.js'),
    ]);
    parseSealKey(flags.key);
    const keys = cliDataKeys(flags, process.env);
    if (flags.file === undefined) {
      if (flags.path || flags.output || flags.inPlace) throw new Error('--path, -o and -i go with --file');
      const raw = value ?? (await io.readText(undefined));
      const plain = flags.trim ? raw.trim() : raw;
      const { markers } = await sealValues([plain], flags.key, keys);
      process.stdout.write(`${markers[0]}\n`);
      return;
    }
    if (value !== undefined) throw new Error('give VALUE or --file, not both');
    io.checkOutputFlags(flags);
    const format = flags.format ?? (extname(flags.file).toLowerCase() === '.json' ? 'json' : 'yaml');
    if (format !== 'yaml' && format !== 'json') throw new Error(`--format ${JSON.stringify(format)}: yaml or json`);
    const text = await io.readText(flags.file);
    let sealed: string;
    try {
      sealed = (await sealDocument(text, format, flags.path ?? [], flags.key, keys)).text;
    } catch (err) {
      if (err instanceof SealedError) throw new Error(`${flags.file}: ${err.message}`);
      throw err;
    }
    await io.writeResult(sealed, flags);
  });
}
