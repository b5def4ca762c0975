#!/usr/bin/env node
// The one entry point: the README, the manifests and the tests all start this file.
import { main } from '../dist/src/cli/main.js';

main(process.argv).catch((err) => {
  process.stderr.write(`podvault: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
