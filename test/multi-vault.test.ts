/**
 * Several vaults in one class (Azure provider issue #1088): each object may name its own vault
 * (`keyvaultName` / `vaultUri`) and tenant, under the same origin rules as the class's.
 */
import { lstat, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDevVault } from '../src/devvault/server.js';
import type { DevVault } from '../src/devvault/server.js';
import { parseSeed } from '../src/devvault/seed.js';
import { isRoot, objectsParameter, rpcError, startHarness, TEST_SEED } from './support/harness.js';
import type { Harness } from './support/harness.js';
import { publishAs, setUp } from './support/identity-fixtures.js';

const OTHER_TENANT = '0b1c2d3e-0000-4000-8000-00000000beef';
const B_PASSWORD = 'pw-vault-b-Rt5-never-log';

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!isRoot)('a class whose objects live in several vaults', () => {
  let h: Harness;
  let b: DevVault; // same tenant as the harness vault
  let c: DevVault; // another tenant, same Entra ID authority
  let gone: DevVault; // closed before the tests: an unreachable vault
  beforeAll(async () => {
    b = await startDevVault({ seed: parseSeed(TEST_SEED, 'vault b') });
    b.store.setSecret('db-password', B_PASSWORD);
    c = await startDevVault({ seed: parseSeed(`tenantId: ${OTHER_TENANT}\n${TEST_SEED}`, 'vault c') });
    c.store.setSecret('db-user', 'user-in-vault-c');
    gone = await startDevVault({ seed: parseSeed(TEST_SEED, 'vault gone') });
    h = await startHarness({ rotationInterval: '1s', vaultMaxAttempts: '2' }, { otherTenants: [OTHER_TENANT], extraVaults: [b, c, gone] });
    b.trustTokensOf(h.vault);
    c.trustTokensOf(h.vault);
    gone.trustTokensOf(h.vault);
    await gone.close();
  });
  afterAll(async () => {
    await h?.close();
    await b?.close();
    await c?.close();
  });

  it('mounts the files of both vaults, byte for byte, one object name in each told apart by alias', async () => {
    await h.writeClass('two', {
      ...h.vaultParameters([]),
      objects: objectsParameter([
        { objectName: 'db-password', objectAlias: 'a/db-password' },
        { objectName: 'db-password', objectAlias: 'b/db-password', vaultUri: b.url },
        { objectName: 'db-user' },
      ]),
    });
    const v = await h.volume({ className: 'two' });
    await h.client.publish(v.request);
    expect(await readFile(join(v.targetPath, 'a/db-password'), 'utf8')).toBe('pw-Zq81-never-log-me');
    expect(await readFile(join(v.targetPath, 'b/db-password'), 'utf8')).toBe(B_PASSWORD);
    expect(await readFile(join(v.targetPath, 'db-user'), 'utf8')).toBe('app');
    expect(b.requests.secret).toBe(1);
    await h.client.unpublish({ volumeId: v.volumeId, targetPath: v.targetPath });
  });

  it('needs no class-level vault when every object names its own; otherwise names the object without one', async () => {
    const objects = [
      { objectName: 'db-user', vaultUri: h.vault.url },
      { objectName: 'db-password', vaultUri: b.url },
    ];
    await h.writeClass('no-class-vault', { tenantId: h.vault.tenantId, objects: objectsParameter(objects) });
    const v = await h.volume({ className: 'no-class-vault' });
    await h.client.publish(v.request);
    expect(await readFile(join(v.targetPath, 'db-password'), 'utf8')).toBe(B_PASSWORD);
    expect(await readFile(join(v.targetPath, 'db-user'), 'utf8')).toBe('app');
    await h.client.unpublish({ volumeId: v.volumeId, targetPath: v.targetPath });

    await h.writeClass('missing-vault', { tenantId: h.vault.tenantId, objects: objectsParameter([...objects, { objectName: 'api-token' }]) });
    const w = await h.volume({ className: 'missing-vault' });
    const err = await rpcError(h.client.publish(w.request));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toBe('parameter keyvaultName is required (or vaultUri): objects[2] (api-token) names no vault of its own');
  });

  it('refuses an object whose vaultUri the operator did not allow, naming the object and field, before any vault call', async () => {
    const before = { a: h.vault.requests.secret ?? 0, challenges: h.vault.requests.challenge ?? 0, tokens: h.vault.requests.token ?? 0 };
    await h.writeClass('hostile-object', {
      ...h.vaultParameters([]),
      objects: objectsParameter([{ objectName: 'db-user' }, { objectName: 'db-password', vaultUri: 'https://collector.example:8443' }]),
    });
    const v = await h.volume({ className: 'hostile-object' });
    const err = await rpcError(h.client.publish(v.request));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toBe("objects[1] (db-password): field vaultUri https://collector.example:8443 is outside vault.azure.net; the node's operator must allow it with --allow-vault-uri");
    expect({ a: h.vault.requests.secret ?? 0, challenges: h.vault.requests.challenge ?? 0, tokens: h.vault.requests.token ?? 0 }).toEqual(before);
    await expect(lstat(v.targetPath)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('an object in an unreachable vault fails the whole publish: nothing is mounted', async () => {
    await h.writeClass('one-gone', { ...h.vaultParameters([]), objects: objectsParameter([{ objectName: 'db-user' }, { objectName: 'db-password', vaultUri: gone.url }]) });
    const v = await h.volume({ className: 'one-gone' });
    const err = await rpcError(h.client.publish(v.request));
    expect(err.code).toBe(status.UNAVAILABLE);
    expect(err.details).toContain(`vault ${gone.url}`);
    expect(err.details).toContain('"db-password"');
    await expect(lstat(v.targetPath)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('reads an object of another tenant with a credential of that tenant', async () => {
    const tenantsBefore = h.vault.tokenTenants.length;
    await h.writeClass('two-tenants', {
      ...h.vaultParameters([]),
      objects: objectsParameter([{ objectName: 'db-password' }, { objectName: 'db-user', vaultUri: c.url, tenantId: OTHER_TENANT }]),
    });
    const v = await h.volume({ className: 'two-tenants' });
    await h.client.publish(v.request);
    expect(await readFile(join(v.targetPath, 'db-password'), 'utf8')).toBe('pw-Zq81-never-log-me');
    expect(await readFile(join(v.targetPath, 'db-user'), 'utf8')).toBe('user-in-vault-c');
    // The vault of the other tenant accepts only that tenant's tokens: one was asked for.
    expect(h.vault.tokenTenants.slice(tenantsBefore)).toContain(OTHER_TENANT);
    expect(c.requests['bad-token'] ?? 0).toBe(0);
    await h.client.unpublish({ volumeId: v.volumeId, targetPath: v.targetPath });
  });

  it('rotates a new version in one vault without touching the same name from the other, recording both by vault', async () => {
    await h.writeClass('rotating', {
      ...h.vaultParameters([]),
      objects: objectsParameter([
        { objectName: 'db-password', objectAlias: 'a' },
        { objectName: 'db-password', objectAlias: 'b', vaultUri: b.url },
      ]),
    });
    const v = await h.volume({ className: 'rotating' });
    await h.client.publish(v.request);
    const bId = `${new URL(b.url).host}/secret/db-password`;
    const logged = (msg: string) => h.logs.map((l) => JSON.parse(l) as { msg: string; objects?: Array<{ id: string }>; versions?: Array<{ id: string }> }).filter((l) => l.msg === msg);
    expect(logged('published').at(-1)?.objects?.map((o) => o.id).sort()).toEqual([bId, 'secret/db-password']);

    b.store.setSecret('db-password', 'rotated-in-b');
    await wait(1100);
    await h.client.publish(v.request); // the kubelet's republish, past --rotation-interval
    expect(await readFile(join(v.targetPath, 'a'), 'utf8')).toBe('pw-Zq81-never-log-me');
    expect(await readFile(join(v.targetPath, 'b'), 'utf8')).toBe('rotated-in-b');
    // Versions are recorded per object and vault: only vault b's object moved.
    expect(logged('rotated: new contents swapped in').at(-1)?.versions?.map((m) => m.id)).toEqual([`${bId}:b`]);
    await h.client.unpublish({ volumeId: v.volumeId, targetPath: v.targetPath });
  });
});

describe.skipIf(!isRoot)('a binding\'s object rule applies to each object against its own vault', () => {
  let h: Harness;
  let b: DevVault;
  beforeAll(async () => {
    b = await startDevVault({ seed: parseSeed(TEST_SEED, 'vault b') });
    h = await startHarness({}, { extraVaults: [b] });
    b.trustTokensOf(h.vault);
    await setUp(h);
    b.store.setSecret('team-a-secret', 'team-a-in-vault-b');
    b.store.putClient({ clientId: 'sp-a', clientSecret: 'unused', managedIdentity: false, read: ['team-a-*'] });
    await h.writeObjects('vault-a-only.yaml', [
      {
        apiVersion: 'aadpodidentity.k8s.io/v1',
        kind: 'AzureIdentityBinding',
        metadata: { name: 'bind-vault-a', namespace: 'default', annotations: { 'podvault.dev/allowed-objects': `${new URL(h.vault.url).host}/team-a-*` } },
        spec: { azureIdentity: 'id-a', selector: 'vault-a-only' },
      },
    ]);
    await h.writeClass('team-a', {
      ...h.vaultParameters([]),
      usePodIdentity: 'true',
      objects: objectsParameter([{ objectName: 'team-a-secret' }, { objectName: 'team-a-secret', objectAlias: 'from-b', vaultUri: b.url }]),
    });
  });
  afterAll(async () => {
    await h?.close();
    await b?.close();
  });

  it('refuses the object of the second vault before any vault call', async () => {
    const refused = await publishAs(h, 'rule-1', 'team-a', { label: 'vault-a-only' });
    expect(refused.code).toBe(status.PERMISSION_DENIED);
    expect(refused.details).toBe(`pod default/rule-1 may not read secret "team-a-secret" from ${b.url}: not in AzureIdentityBinding default/bind-vault-a annotation podvault.dev/allowed-objects`);
    expect(h.vault.requests.secret ?? 0).toBe(0);
    expect(b.requests.secret ?? 0).toBe(0);
  });
});
