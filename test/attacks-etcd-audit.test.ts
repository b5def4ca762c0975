import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { AuditTally } from '../src/etcd-audit/audit-tally.js';
import { classifyValue } from '../src/etcd-audit/classify.js';
import { encodeEncryptedObject } from '../src/etcd-audit/encrypted-object.js';
import { objectNameOf } from '../src/etcd-audit/object-key.js';
import { renderJson, renderTable } from '../src/etcd-audit/render-report.js';
import type { ReportContext } from '../src/etcd-audit/render-report.js';

// The adversary writes raw etcd values (a compromised cluster) or creates objects with any name.

const prefix = Buffer.from('/registry/secrets/');
const context = (expectKeyId?: string): ReportContext => ({ endpoints: ['http://127.0.0.1:2379'], resources: ['secrets'], revision: '7', expectKeyId });
const envelope = (keyID: string): Buffer =>
  Buffer.concat([Buffer.from('k8s:enc:kms:v2:p:'), encodeEncryptedObject({ encryptedData: randomBytes(40), keyID, encryptedDEKSource: randomBytes(32) })]);

describe('etcd-audit under attack', () => {
  it('a KMS v2 key id with C1 controls (U+009B is CSI) and bidi overrides reaches --json only as \\u escapes, and parses back to itself', () => {
    const keyId = 'k\u009b2J\u202eanelc :tluseR\u2028\u0085x\u007f';
    const tally = new AuditTally(keyId);
    tally.add('secrets', objectNameOf(Buffer.from('/registry/secrets/ns/a'), prefix), classifyValue(envelope(keyId)));
    tally.add('secrets', objectNameOf(Buffer.from('/registry/secrets/ns/b'), prefix), classifyValue(envelope('other')));
    const json = renderJson(tally, context(keyId));
    // Only printable ASCII and newlines: nothing a terminal, a log viewer or a browser acts on.
    expect(json).toMatch(/^[\x20-\x7e\n]*$/);
    const parsed = JSON.parse(json) as { groups: { keyId?: string }[]; expectKeyId: string; otherKey: unknown[] };
    expect(parsed.groups.map((g) => g.keyId).sort()).toEqual([keyId, 'other'].sort());
    expect(parsed.expectKeyId).toBe(keyId);
    expect(parsed.otherKey).toHaveLength(1);
    expect(renderTable(tally, context(keyId))).toMatch(/^[\x20-\x7e\n…]*$/);
  });

  it('250,000 distinct key ids (one per raw value) still give a table and JSON, one row each, not a crash', () => {
    const tally = new AuditTally(undefined);
    const n = 250_000;
    for (let i = 0; i < n; i++) tally.add('secrets', { namespace: 'ns', name: `s${i}` }, { provider: 'kms-v2', configName: 'p', keyId: `key-${i}` });
    const table = renderTable(tally, context());
    expect(table.split('\n').filter((l) => /^secrets +kms-v2 +p +key-\d+ +1$/.test(l))).toHaveLength(n);
    expect(table).toContain('Result: no plaintext or unknown values (exit 0)');
    expect((JSON.parse(renderJson(tally, context())) as { groups: unknown[] }).groups).toHaveLength(n);
  }, 60_000);

  it('an envelope of 1.5 MB of nested protobuf groups is an unknown value (exit 3), at once, not a stack overflow', () => {
    const value = Buffer.concat([Buffer.from('k8s:enc:kms:v2:p:'), Buffer.alloc(1_500_000, 0x33)]);
    const started = performance.now();
    expect(classifyValue(value)).toEqual({ provider: 'unknown', reason: 'bad-kms-v2-envelope' });
    expect(performance.now() - started).toBeLessThan(500);
  });
});
