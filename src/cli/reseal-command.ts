import { Command } from 'commander';
import type { VaultFlags } from '../sealed/cli-identity.js';
import { withOutputFlags, withS5KeyFlag, withVaultFlags } from './sealed-flags.js';

interface ResealFlags extends VaultFlags {
  key: string;
  output?: string;
  inPlace?: boolean;
  s5AesKey?: string;
}

/** `podvault reseal [FILE] --key …`: s5 aes markers become `{{pv:…}}` markers under one data key. */
export function resealCommand(): Command {
  const command = new Command('reseal')
    .description('turn the s5 aes {{s5:…}} markers of FILE (stdin if none) into {{pv:…}} markers sealed with a Key Vault key, all under one data key; {{pv:…}} markers and other text stay as they are')
    .argument('[file]', 'the text with s5 markers; stdin if absent')
    .requiredOption('--key <url>', 'the Key Vault RSA key: https://<vault>/keys/<name> (its current version) or .../<version>');
  withS5KeyFlag(withVaultFlags(withOutputFlags(command)));
  return command.action(async (file: string | undefined, flags: ResealFlags) => {
    const [{ resealText, SealedError, parseS5AesKey }, io, { cliDataKeys }, { parseSealKey }] = await Promise.all([
      import('../sealed/index.js'),
      import('../sealed/text-io.js'),
      import('../sealed/cli-identity.js'),
      import('../sealed/sealed-key-id.js'),
    ]);
    io.checkOutputFlags({ file, ...flags });
    parseSealKey(flags.key);
    const s5Hex = flags.s5AesKey ?? process.env.S5_AES_KEY;
    if (!s5Hex) throw new Error('reseal needs the s5 aes key: set S5_AES_KEY (or --s5-aes-key)');
    const s5AesKey = parseS5AesKey(s5Hex);
    const text = await io.readText(file);
    let result: Awaited<ReturnType<typeof resealText>>;
    try {
      result = await resealText(text, { s5AesKey, wrapper: cliDataKeys(flags, process.env), keyId: flags.key });
    } catch (err) {
      if (err instanceof SealedError) {
        const where = err.position ? `${file ?? '<stdin>'}:${err.position.line}:${err.position.column}` : (file ?? '<stdin>');
        throw new Error(`${where}: ${err.reason}`);
      }
      throw err;
    } finally {
      s5AesKey.fill(0);
    }
    await io.writeResult(result.text, { file, ...flags });
    process.stderr.write(`podvault reseal: ${result.count} s5 marker(s) resealed${result.versionedKeyId ? ` with ${result.versionedKeyId}` : ''}\n`);
  });
}
