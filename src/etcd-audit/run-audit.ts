import type { AuditOptions } from './audit-options.js';
import { AuditTally } from './audit-tally.js';
import { classifyValue } from './classify.js';
import { EtcdReader } from './etcd-reader.js';
import { objectNameOf } from './object-key.js';
import type { ProgressLine } from './progress-line.js';
import type { ReportContext } from './render-report.js';

export interface AuditResult {
  tally: AuditTally;
  context: ReportContext;
}

/**
 * The audit: for each resource, read `<prefix>/<resource>/` page by page at one revision,
 * classify each value and count it. A page's values are dropped once counted, so memory holds one
 * page plus the names of flagged objects.
 */
export async function runAudit(options: AuditOptions, progress: ProgressLine): Promise<AuditResult> {
  const tally = new AuditTally(options.expectKeyId);
  const reader = new EtcdReader(options);
  try {
    for (const resource of options.resources) {
      const resourcePrefix = Buffer.from(`${options.prefix}/${resource}/`);
      let read = 0;
      for await (const page of reader.pages(resourcePrefix)) {
        for (const kv of page) tally.add(resource, objectNameOf(kv.key, resourcePrefix), classifyValue(kv.value));
        read += page.length;
        progress.update(resource, read, tally.total);
      }
    }
  } finally {
    progress.finish();
    reader.close();
  }
  return {
    tally,
    context: { endpoints: options.endpoints, resources: options.resources, revision: reader.readRevision, expectKeyId: options.expectKeyId },
  };
}
