import type { AuditGroup, AuditTally, FlaggedObject } from './audit-tally.js';
import { EXIT_CODES } from './exit-codes.js';

/** What a report says besides the tally: where and at which revision it read. */
export interface ReportContext {
  endpoints: readonly string[];
  resources: readonly string[];
  revision: string | undefined;
  expectKeyId: string | undefined;
}

/** `--json`: one object, stable field names, for CI gates and scripts. */
export function renderJson(tally: AuditTally, context: ReportContext): string {
  const verdict = tally.verdict();
  return `${asciiJson(
    {
      endpoints: context.endpoints,
      revision: context.revision ?? null,
      objects: Object.fromEntries(context.resources.map((r) => [r, tally.objectsByResource.get(r) ?? 0])),
      total: tally.total,
      groups: tally.rows(),
      plaintext: tally.plaintext,
      unknown: tally.unknown,
      ...(context.expectKeyId !== undefined ? { expectKeyId: context.expectKeyId, otherKey: tally.otherKey } : {}),
      verdict,
      exitCode: EXIT_CODES[verdict],
    },
  )}\n`;
}

/**
 * JSON.stringify escapes only C0 controls: a key id's C1 controls (U+009B is a terminal's CSI),
 * bidi overrides or line separators would reach whoever `cat`s the report. Every character past
 * ASCII becomes a `\\u` escape, which any JSON parser reads back as the same string.
 */
function asciiJson(value: unknown): string {
  return JSON.stringify(value, null, 2).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

const KEY_ID_SHOWN = 72;

/** The table for people: one row per resource × provider × config name × key id, then the objects to rewrite. */
export function renderTable(tally: AuditTally, context: ReportContext): string {
  const lines: string[] = [];
  const perResource = context.resources.map((r) => `${r}: ${tally.objectsByResource.get(r) ?? 0}`).join(', ');
  lines.push(`etcd-audit: ${tally.total} objects at revision ${context.revision ?? '-'} (${perResource})`, '');
  const header = ['RESOURCE', 'PROVIDER', 'NAME', 'KEY ID', 'OBJECTS'];
  const rows = tally.rows().map((g) => [g.resource, providerLabel(g), g.configName ?? '-', g.keyId === undefined ? '-' : shorten(safe(g.keyId)), String(g.count)]);
  if (rows.length === 0) lines.push('(no objects)');
  else for (const line of alignColumns([header, ...rows])) lines.push(line); // not push(...): one argument per row

  const section = (title: string, objects: readonly FlaggedObject[], describe: (o: FlaggedObject) => string): void => {
    if (objects.length === 0) return;
    lines.push('', `${title} (${objects.length}):`);
    for (const o of objects) lines.push(`  ${o.resource} ${o.namespace ? `${o.namespace}/` : ''}${o.name}  ${describe(o)}`);
  };
  section('Plaintext: rewrite each (kubectl replace) once encryption is configured', tally.plaintext, (o) => `(${o.encoding ?? ''})`);
  section('Unknown format', tally.unknown, (o) => `(${o.reason ?? ''})`);
  if (context.expectKeyId !== undefined) {
    section(`Not under key id ${shorten(safe(context.expectKeyId))}: rewrite each (kubectl replace)`, tally.otherKey, (o) =>
      `(${o.provider}${o.configName ? ` ${o.configName}` : ''}${o.keyId !== undefined ? ` ${shorten(safe(o.keyId))}` : ''})`,
    );
  }
  const verdict = tally.verdict();
  const summary = {
    clean: context.expectKeyId !== undefined ? `every object is under key id ${shorten(safe(context.expectKeyId))}` : 'no plaintext or unknown values',
    plaintext: `${tally.plaintext.length} plaintext`,
    unknown: `${tally.unknown.length} of unknown format`,
    otherKey: `${tally.otherKey.length} under another key`,
  }[verdict];
  lines.push('', `Result: ${summary} (exit ${EXIT_CODES[verdict]})`);
  return `${lines.join('\n')}\n`;
}

function providerLabel(g: AuditGroup): string {
  if (g.provider === 'identity') return `identity (plaintext ${g.encoding ?? ''})`;
  if (g.provider === 'unknown') return `unknown (${g.reason ?? ''})`;
  return g.provider;
}

/** Key ids are public but not necessarily printable: escape anything a terminal would act on. */
function safe(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function shorten(text: string): string {
  return text.length > KEY_ID_SHOWN ? `${text.slice(0, KEY_ID_SHOWN - 1)}…` : text;
}

function alignColumns(rows: readonly string[][]): string[] {
  // A loop, not Math.max(...column): one argument per row overflows the stack past ~150,000 rows
  // (a row per distinct key id, and raw etcd values can carry any number of them).
  const widths = rows[0]!.map(() => 0);
  for (const r of rows) r.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ').trimEnd());
}
