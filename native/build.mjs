// `npm run build:native`: compile native/mount.c with the node-gyp that npm bundles, against the
// headers of the Node that runs this script (no download: `--nodedir` is that Node's own prefix,
// which holds include/node/node_api.h). `prepare` runs it, so `npm ci` builds the addon.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const prefix = dirname(dirname(process.execPath));
// npm sets npm_config_node_gyp for the scripts it runs; otherwise npm's own copy beside this Node.
const nodeGyp = [process.env.npm_config_node_gyp, join(prefix, 'lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js')].find((p) => p && existsSync(p));
if (!nodeGyp) {
  process.stderr.write('build:native: node-gyp not found (it comes with npm)\n');
  process.exit(1);
}
if (!existsSync(join(prefix, 'include/node/node_api.h'))) {
  process.stderr.write(`build:native: Node's headers are not in ${prefix}/include/node\n`);
  process.exit(1);
}
const result = spawnSync(process.execPath, [nodeGyp, 'rebuild', `--nodedir=${prefix}`, '--loglevel=warn'], { cwd: here, stdio: 'inherit' });
process.exit(result.status ?? 1);
