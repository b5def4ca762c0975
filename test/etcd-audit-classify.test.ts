import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { AuditTally } from '../src/etcd-audit/audit-tally.js';
import { classifyValue } from '../src/etcd-audit/classify.js';
import { encodeEncryptedObject } from '../src/etcd-audit/encrypted-object.js';
import { objectNameOf } from '../src/etcd-audit/object-key.js';
import { renderTable } from '../src/etcd-audit/render-report.js';

const envelope = (fields: Partial<Parameters<typeof encodeEncryptedObject>[0]>): Buffer =>
  Buffer.concat([
    Buffer.from('k8s:enc:kms:v2:p:'),
    encodeEncryptedObject({ encryptedData: randomBytes(40), keyID: 'k1', encryptedDEKSource: randomBytes(256), ...fields }),
  ]);

describe('classifyValue', () => {
  it.each([
    ['protobuf magic', Buffer.from('k8s\0rest'), { provider: 'identity', encoding: 'protobuf' }],
    ['JSON after whitespace', Buffer.from(' \n\t{"kind":"Secret"}'), { provider: 'identity', encoding: 'json' }],
    ['a JSON array is not an object kube-apiserver writes', Buffer.from('["x"]'), { provider: 'unknown', reason: 'unrecognised' }],
    ['empty value', Buffer.alloc(0), { provider: 'unknown', reason: 'unrecognised' }],
    ['aescbc', Buffer.from('k8s:enc:aescbc:v1:key-1:xyz'), { provider: 'aescbc', configName: 'key-1' }],
    ['secretbox', Buffer.from('k8s:enc:secretbox:v1:s:'), { provider: 'secretbox', configName: 's' }],
    ['kms v1', Buffer.from('k8s:enc:kms:v1:azurekms:\0\x10abc'), { provider: 'kms-v1', configName: 'azurekms' }],
    ['kms v2', envelope({}), { provider: 'kms-v2', configName: 'p', keyId: 'k1' }],
    ['a prefix without the name\'s colon', Buffer.from('k8s:enc:aesgcm:v1:noend'), { provider: 'unknown', reason: 'bad-config-name' }],
    ['an empty name', Buffer.from('k8s:enc:aesgcm:v1::x'), { provider: 'unknown', reason: 'bad-config-name' }],
    ['a name with a control byte', Buffer.from('k8s:enc:aesgcm:v1:a\x1b[2Jb:x'), { provider: 'unknown', reason: 'bad-config-name' }],
    ['a name over 253 bytes', Buffer.from(`k8s:enc:aesgcm:v1:${'n'.repeat(254)}:x`), { provider: 'unknown', reason: 'bad-config-name' }],
    ['kms v2 with bytes that are no protobuf', Buffer.concat([Buffer.from('k8s:enc:kms:v2:p:'), Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f])]), { provider: 'unknown', reason: 'bad-kms-v2-envelope' }],
    ['kms v2 without a key id', envelope({ keyID: '' }), { provider: 'unknown', reason: 'bad-kms-v2-envelope' }],
    ['kms v2 with a key id over 1 KiB', envelope({ keyID: 'k'.repeat(1025) }), { provider: 'unknown', reason: 'bad-kms-v2-envelope' }],
    ['kms v2 with a DEK source over 1 KiB', envelope({ encryptedDEKSource: randomBytes(1025) }), { provider: 'unknown', reason: 'bad-kms-v2-envelope' }],
    ['kms v2 without data', envelope({ encryptedData: Buffer.alloc(0) }), { provider: 'unknown', reason: 'bad-kms-v2-envelope' }],
  ])('%s', (_, value, expected) => {
    expect(classifyValue(value)).toEqual(expected);
  });
});

describe('what the report prints of keys and key ids', () => {
  const prefix = Buffer.from('/registry/secrets/');

  it('names come from the key: namespace/name, or a cluster-scoped name', () => {
    expect(objectNameOf(Buffer.from('/registry/secrets/default/db'), prefix)).toEqual({ namespace: 'default', name: 'db' });
    expect(objectNameOf(Buffer.from('/registry/secrets/lonely'), prefix)).toEqual({ namespace: '', name: 'lonely' });
  });

  it('a key or key id with terminal control bytes is printed escaped', () => {
    const name = objectNameOf(Buffer.from('/registry/secrets/ns/evil\x1b[2J\nResult: clean'), prefix);
    expect(name.name).toBe('evil\\u001b[2J\\nResult: clean');
    expect(name.name).not.toMatch(/[\x00-\x1f]/);
    const tally = new AuditTally(undefined);
    tally.add('secrets', name, { provider: 'identity', encoding: 'protobuf' });
    tally.add('secrets', { namespace: 'ns', name: 'x' }, { provider: 'kms-v2', configName: 'p', keyId: 'key\x1b]0;owned\x07' });
    const table = renderTable(tally, { endpoints: ['http://e:2379'], resources: ['secrets'], revision: '9', expectKeyId: undefined });
    expect(table).not.toMatch(/[\x00-\x09\x0b-\x1f]/);
    expect(table).toContain('key\\u001b]0;owned\\u0007');
  });
});
