import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../src/package-info.js';

const run = promisify(execFile);

/**
 * Templates must not cost every driver the SDK modules it loads on first use only (issue 9's
 * memory work: the key and certificate clients are ~10 MiB resident): the driver's modules, from
 * the built `dist/` as the DaemonSet runs them, load no `@azure/keyvault-keys` until a key, a
 * certificate or a sealed value is fetched. A module hook records every resolved URL.
 */
describe('the driver with templates loads the Key Vault keys SDK lazily', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp('/dev/shm/podvault-lazy-');
    await writeFile(join(dir, 'hooks.mjs'), "export async function resolve(s, c, next) { const r = await next(s, c); if (r.url.includes('/@azure/keyvault-keys/')) console.log('LOADED ' + r.url); return r; }\n");
    await writeFile(join(dir, 'register.mjs'), `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(join(dir, 'hooks.mjs')).href)});\n`);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('importing the driver (server, provider, templates, sealed values) loads no @azure/keyvault-keys', async () => {
    const modules = ['dist/src/driver/server.js', 'dist/src/providers/azure/template-files.js', 'dist/src/providers/azure/sealed-values.js'].map((m) => pathToFileURL(join(packageRoot, m)).href);
    const { stdout } = await run(process.execPath, ['--import', pathToFileURL(join(dir, 'register.mjs')).href, '--input-type=module', '-e', `${modules.map((m) => `await import(${JSON.stringify(m)});`).join(' ')} console.log('imported');`]);
    expect(stdout).toContain('imported');
    expect(stdout).not.toContain('LOADED');
  });
});
