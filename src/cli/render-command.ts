import { Command } from 'commander';
import type { VaultFlags } from '../sealed/cli-identity.js';
import { withOutputFlags, withS5KeyFlag, withVaultFlags } from './sealed-flags.js';

interface RenderFlags extends VaultFlags {
  output?: string;
  inPlace?: boolean;
  s5AesKey?: string;
}

/**
 * `podvault render [FILE]`: every `{{pv:…}}` marker (and s5 aes `{{s5:…}}` marker) replaced by
 * its value, unwrapped with the caller's identity; nothing is written unless every marker opens.
 */
export function renderCommand(): Command {
  const command = new Command('render')
    .description('replace every {{pv:…}} marker of FILE (stdin if none) with its value, unwrapping each data key once with your Key Vault identity; also s5 aes {{s5:…}} markers with S5_AES_KEY. Nothing is written when any marker fails')
    .argument('[file]', 'the text to render (any format); stdin if absent');
  withS5KeyFlag(withVaultFlags(withOutputFlags(command)));
  return command.action(async (file: string | undefined, flags: RenderFlags) => {
    const [{ renderText, SealedError, parseS5AesKey }, io, { cliDataKeys }] = await Promise.all([import('../sealed/index.js'), import('../sealed/text-io.js'), import('../sealed/cli-identity.js')]);
    io.checkOutputFlags({ file, ...flags });
    const s5Hex = flags.s5AesKey ?? process.env.S5_AES_KEY;
    const s5AesKey = s5Hex ? parseS5AesKey(s5Hex) : undefined;
    const text = await io.readText(file);
    let rendered: string;
    try {
      rendered = await renderText(text, { unwrapper: cliDataKeys(flags, process.env), ...(s5AesKey ? { s5AesKey } : {}) });
    } catch (err) {
      if (err instanceof SealedError) {
        const where = err.position ? `${file ?? '<stdin>'}:${err.position.line}:${err.position.column}` : (file ?? '<stdin>');
        throw new Error(`${where}: ${err.reason}`);
      }
      throw err;
    } finally {
      s5AesKey?.fill(0);
    }
    await io.writeResult(rendered, { file, ...flags });
  });
}
