import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The package root, found by walking up from this module: the same answer whether we run from
 * `src/` (tests) or from `dist/src/` (the built CLI).
 */
function findPackageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'proto'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('podvault: cannot find the package root (package.json beside proto/)');
    dir = parent;
  }
}

export const packageRoot = findPackageRoot();

const pkg = JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { version?: unknown };

/** The version reported by GetPluginInfo: the one in package.json. */
export const packageVersion: string = typeof pkg.version === 'string' ? pkg.version : '0.0.0';

export const csiProtoPath = join(packageRoot, 'proto', 'csi', 'csi.proto');

export const kmsProtoPath = join(packageRoot, 'proto', 'kms', 'v2', 'api.proto');
