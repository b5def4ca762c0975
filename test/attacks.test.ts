/**
 * Attacks found by the review of the hardening pass (docs/security.md), each performed for real
 * against a running driver and checked for the safe outcome.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { globMatch } from '../src/util/glob.js';
import { isRoot, rpcError, startHarness } from './support/harness.js';
import { readMountInfo } from '../src/driver/mountinfo.js';
import type { Harness } from './support/harness.js';
import { publishAs, setUp } from './support/identity-fixtures.js';

describe('globs of podvault.dev/allowed-objects', () => {
  it('keep their meaning', () => {
    expect(globMatch('db-*', 'db-password')).toBe(true);
    expect(globMatch('db-*', 'api-db-x')).toBe(false);
    expect(globMatch('*', '')).toBe(true);
    expect(globMatch('a?c', 'abc')).toBe(true);
    expect(globMatch('a?c', 'ac')).toBe(false);
    expect(globMatch('*.vault.azure.net', 'x.vault.azure.net')).toBe(true);
    expect(globMatch('a.b', 'aXb')).toBe(false); // '.' is literal
    expect(globMatch('*a*b', 'xxaxxb')).toBe(true);
    expect(globMatch('*a*b', 'xxaxxbc')).toBe(false);
    expect(globMatch('team-a-*-key', 'team-a-x-y-key')).toBe(true);
  });

  it('a glob built to backtrack is decided in linear time (a RegExp took 37 s for six stars)', () => {
    const started = Date.now();
    expect(globMatch(`${'*a'.repeat(40)}*b`, 'a'.repeat(127))).toBe(false);
    expect(Date.now() - started).toBeLessThan(1000);
  });
});

describe.skipIf(!isRoot)('a binding author\'s allowed-objects glob cannot stall the driver', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
    await setUp(h);
    await h.writeObjects('redos.yaml', [
      {
        apiVersion: 'aadpodidentity.k8s.io/v1',
        kind: 'AzureIdentityBinding',
        metadata: { name: 'bind-redos', namespace: 'default', annotations: { 'podvault.dev/allowed-objects': `*/${'*a'.repeat(12)}*b` } },
        spec: { azureIdentity: 'id-a', selector: 'redos' },
      },
    ]);
    await h.writeClass('redos', { ...h.vaultParameters([{ objectName: 'a'.repeat(120) }]), usePodIdentity: 'true' });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('the publish is refused at once and Probe is answered meanwhile', async () => {
    const started = Date.now();
    const publish = publishAs(h, 'redos-1', 'redos', { label: 'redos' });
    const probe = await h.client.probe();
    expect(probe).toBeDefined();
    const refused = await publish;
    expect(refused).toMatchObject({ code: status.PERMISSION_DENIED });
    expect(refused.details).toMatch(/may not read secret "a{120}"/);
    expect(Date.now() - started).toBeLessThan(5000);
  });
});

describe.skipIf(!isRoot)('a class author\'s deep aliases are counted against --tmpfs-size', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  it('15 aliases <i>/a/a/…/a (30,000 directories, 39 MiB of kernel memory) are refused before anything is written', async () => {
    const objects = Array.from({ length: 15 }, (_, i) => ({ objectName: 'db-user', objectAlias: `${i}/${Array(1990).fill('a').join('/')}` }));
    await h.writeClass('deep', h.vaultParameters(objects));
    const v = await h.volume({ className: 'deep' });
    const refused = await rpcError(h.client.publish(v.request));
    expect(refused.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(refused.details).toMatch(/each directory one page\), over --tmpfs-size/);
    expect((await readMountInfo()).some((m) => m.mountPoint === v.targetPath)).toBe(false);
  });

  it('aliases in a few sub-directories still publish', async () => {
    await h.writeClass('subdirs', h.vaultParameters([{ objectName: 'db-user', objectAlias: 'tls/a/user' }, { objectName: 'db-password', objectAlias: 'tls/b/password' }]));
    const v = await h.volume({ className: 'subdirs' });
    await h.client.publish(v.request);
    expect(await readFile(join(v.targetPath, 'tls/a/user'), 'utf8')).toBe('app');
    await h.client.unpublish({ volumeId: v.volumeId, targetPath: v.targetPath });
  });
});

describe.skipIf(!isRoot)('a hostile vault\'s endless version list (objectVersionHistory)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ publishDeadline: '20s' });
    await h.writeClass('hist', h.vaultParameters([{ objectName: 'api-token', objectVersionHistory: '2' }]));
  });
  afterAll(async () => {
    await h?.close();
  });

  const page = (ids: string[]): string =>
    JSON.stringify({ value: ids.map((id) => ({ id: `${h.vault.url}/secrets/api-token/${id}`, attributes: { enabled: true, created: 1 } })), nextLink: `${h.vault.url}/secrets/api-token/versions?page=next` });

  it('every nextLink answered with 2,000 more versions: refused at the cap, the heap stays small, the driver keeps serving', async () => {
    h.vault.injectFault({ path: /\/versions/, times: 1_000_000, body: page(Array.from({ length: 2000 }, (_, i) => String(i).padStart(32, '0'))) });
    const heapBefore = process.memoryUsage().heapUsed;
    const v = await h.volume({ className: 'hist' });
    const refused = await rpcError(h.client.publish(v.request));
    h.vault.clearFaults();
    expect(refused.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(refused.details).toMatch(/secret "api-token" has more than 10000 versions/);
    expect(h.vault.requests['fault-body']).toBeLessThanOrEqual(3 * 6); // a few pages per attempt, not thousands
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(512 * 1024 * 1024);
    expect(await h.client.probe()).toBeDefined();
    expect((await readMountInfo()).some((m) => m.mountPoint === v.targetPath)).toBe(false);
  }, 60_000);

  it('a version id no Key Vault makes (100 KB) is refused, not kept', async () => {
    h.vault.injectFault({ path: /\/versions/, times: 10, body: page(['x'.repeat(100_000)]) });
    const v = await h.volume({ className: 'hist' });
    const refused = await rpcError(h.client.publish(v.request));
    h.vault.clearFaults();
    expect(refused.details).toMatch(/holds an id that is not a Key Vault version id/);
    expect(refused.details).not.toContain('xxxxxxxx');
  });

  it('the honest vault still serves objectVersionHistory', async () => {
    const v = await h.volume({ className: 'hist' });
    await h.client.publish(v.request);
    expect(await readFile(join(v.targetPath, 'api-token/0'), 'utf8')).toBe('tok-Kx77-never-log-me');
    await h.client.unpublish({ volumeId: v.volumeId, targetPath: v.targetPath });
  });
});
