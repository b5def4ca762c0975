import { Command } from 'commander';
import type { AuditFlags } from '../etcd-audit/audit-options.js';

/**
 * `podvault etcd-audit`: what etcd holds for the chosen resources, by encryption provider, config
 * name and KMS v2 key id, without ever printing a value. The compliance gate after enabling
 * encryption at rest or rotating a key; docs/etcd-audit.md explains it and its exit codes.
 */
export function etcdAuditCommand(): Command {
  return new Command('etcd-audit')
    .description('report how etcd stores Secrets (plaintext, aescbc, aesgcm, secretbox, kms v1, kms v2 by key id) without printing values; exit 0 clean, 1 error, 2 plaintext, 3 unknown, 4 other key')
    .option('--endpoints <list>', 'etcd endpoints, comma-separated (host:port, http:// or https://)', '127.0.0.1:2379')
    .option('--cacert <file>', 'CA bundle that signed etcd\'s server certificate')
    .option('--cert <file>', 'client certificate (PEM) for etcd')
    .option('--key <file>', 'client certificate\'s key (PEM)')
    .option('--resources <list>', 'resources to audit, comma-separated (secrets, configmaps, <group>/<resource>)', 'secrets')
    .option('--prefix <key>', 'kube-apiserver\'s --etcd-prefix', '/registry')
    .option('--expect-key-id <id>', 'exit 4 unless every object is KMS v2 encrypted under this key id')
    .option('--json', 'print the report as JSON')
    .option('--progress', 'print progress on stderr even when it is not a terminal')
    .option('--page-size <n>', 'keys per etcd range read', '500')
    .option('--max-page-bytes <size>', 'largest etcd answer to accept (a larger page is read as smaller ones)', '16Mi')
    .option('--dial-timeout <duration>', 'time to wait for a connection', '5s')
    .option('--command-timeout <duration>', 'time to wait for each read', '30s')
    .action(async (flags: AuditFlags) => {
      const [{ parseAuditOptions }, { runAudit }, { renderJson, renderTable }, { ProgressLine }, { EXIT_CODES }] = await Promise.all([
        import('../etcd-audit/audit-options.js'),
        import('../etcd-audit/run-audit.js'),
        import('../etcd-audit/render-report.js'),
        import('../etcd-audit/progress-line.js'),
        import('../etcd-audit/exit-codes.js'),
      ]);
      // grpc-js passes an IP endpoint as the TLS server name, which Node reports as deprecated
      // (DEP0123) on stderr; certificates are still checked against the IP. Not the operator's concern.
      process.noDeprecation = true;
      const options = await parseAuditOptions(flags, process.stderr.isTTY === true);
      const { tally, context } = await runAudit(options, new ProgressLine(options.progress ? process.stderr : undefined));
      process.stdout.write(options.json ? renderJson(tally, context) : renderTable(tally, context));
      process.exitCode = EXIT_CODES[tally.verdict()];
    });
}
