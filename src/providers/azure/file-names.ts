import { dirname } from 'node:path';
import { invalidArgument } from '../../errors/podvault-error.js';
import type { ProviderFile } from '../provider.js';

/**
 * Every file of a volume has its own name, and none lies inside another: objects, their
 * `objectVersionHistory` directories, `.crt`/`.key` pairs, jmesPath fields and the env file
 * together. Checked before anything is written (the writer checks again), naming the objects.
 */
export function checkFileNames(where: string, files: readonly ProviderFile[]): void {
  const byPath = new Map<string, ProviderFile>();
  for (const f of files) {
    const other = byPath.get(f.path);
    if (other) throw invalidArgument(`${where}: file name ${JSON.stringify(f.path)} is produced twice (${describe(other)} and ${describe(f)}); set objectAlias`);
    byPath.set(f.path, f);
  }
  for (const f of files) {
    for (let parent = dirname(f.path); parent !== '.'; parent = dirname(parent)) {
      const other = byPath.get(parent);
      if (other) throw invalidArgument(`${where}: file ${JSON.stringify(f.path)} (${describe(f)}) would lie inside file ${JSON.stringify(parent)} (${describe(other)})`);
    }
  }
}

function describe(f: ProviderFile): string {
  return f.objectId.startsWith('envFile/') ? 'parameter envFile' : f.objectId;
}
