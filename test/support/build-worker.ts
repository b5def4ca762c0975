import { execFileSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../src/package-info.js';

/**
 * vitest runs the TypeScript sources, but a worker thread (the PKCS#12 converter) can only load
 * JavaScript, so it loads the build under dist/. Rebuild it when any source is newer, so a
 * focused `npx vitest run` never tests a stale worker (`npm test` builds first anyway).
 */
export default function setup(): void {
  const built = join(packageRoot, 'dist', 'src', 'untrusted', 'pkcs12-worker.js');
  const mtime = (path: string): number => {
    try {
      return statSync(path).mtimeMs;
    } catch {
      return 0;
    }
  };
  const newest = (dir: string): number =>
    readdirSync(dir, { withFileTypes: true }).reduce((max, e) => Math.max(max, e.isDirectory() ? newest(join(dir, e.name)) : mtime(join(dir, e.name))), 0);
  if (mtime(built) >= newest(join(packageRoot, 'src'))) return;
  try {
    execFileSync(process.execPath, [join(packageRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(packageRoot, 'tsconfig.build.json')], { stdio: 'inherit' });
  } catch {
    // tsc still emits when only types are wrong; the typecheck reports those.
  }
}
