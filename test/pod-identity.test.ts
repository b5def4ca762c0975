import { generateKeyPairSync } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import jwt from 'jsonwebtoken';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isRoot, startHarness } from './support/harness.js';
import type { Harness } from './support/harness.js';
import { ISSUER, PFX_PASSWORD, podToken, publishAs, setUp, SP_A_SECRET, SP_B_SECRET, TEAM_A_VALUE, TEAM_B_VALUE } from './support/identity-fixtures.js';

describe.skipIf(!isRoot)('each pod reads Key Vault only as the identity bound to it', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ allowManagedIdentity: ['default=mi-a'] });
    await setUp(h);
  });
  afterAll(async () => {
    await h?.close();
  });

  it('pod A reads its objects through its binding; pod B, bound to B, cannot read them', async () => {
    expect((await publishAs(h, 'a-1', 'team-a', { label: 'team-a' })).text).toBe(TEAM_A_VALUE);
    expect((await publishAs(h, 'b-1', 'team-b', { label: 'team-b' })).text).toBe(TEAM_B_VALUE);
    const denied = await publishAs(h, 'b-2', 'team-a', { label: 'team-b' });
    expect(denied.code).toBe(status.PERMISSION_DENIED);
    expect(denied.details).toMatch(/secret "team-a-secret": HTTP 403/);
  });

  it('uses the pod identity binding by default when the class names no identity and the volume no secret', async () => {
    expect((await publishAs(h, 'a-native', 'native', { label: 'team-a' })).text).toBe(TEAM_A_VALUE);
  });

  it('denies a pod without the label, or with a label no binding selects, naming the pod and why', async () => {
    const none = await publishAs(h, 'nolabel', 'team-a');
    expect(none).toMatchObject({ code: status.PERMISSION_DENIED, details: 'no identity for pod default/nolabel: the pod has no aadpodidbinding label' });
    const unknown = await publishAs(h, 'unknown', 'team-a', { label: 'nobody-binds-this' });
    expect(unknown).toMatchObject({ code: status.PERMISSION_DENIED, details: 'no identity for pod default/unknown: no AzureIdentityBinding in namespace default has selector "nobody-binds-this"' });
  });

  it('ignores a label naming a binding in another namespace', async () => {
    const foreign = await publishAs(h, 'thief', 'team-a', { label: 'foreign' });
    expect(foreign.code).toBe(status.PERMISSION_DENIED);
    expect(foreign.details).toMatch(/no AzureIdentityBinding in namespace default has selector "foreign"/);
  });

  it('picks the binding with the highest weight when several select the pod', async () => {
    expect((await publishAs(h, 'w-1', 'team-a', { label: 'weighted' })).text).toBe(TEAM_A_VALUE);
    expect(h.logs.join('')).toMatch(/"chosen":"default\/bind-heavy"/);
  });

  it('takes a deleted binding into account at the next publish', async () => {
    expect((await publishAs(h, 'del-1', 'team-b', { label: 'team-b' })).text).toBe(TEAM_B_VALUE);
    const file = await readFile(join(h.classDir, 'identities.yaml'), 'utf8');
    await h.writeObjects('identities.yaml', []);
    await h.writeObjects('identities-kept.yaml', []);
    try {
      const after = await publishAs(h, 'del-2', 'team-b', { label: 'team-b' });
      expect(after.code).toBe(status.PERMISSION_DENIED);
    } finally {
      await h.removeObjects('identities-kept.yaml');
      await writeFile(join(h.classDir, 'identities.yaml'), file);
    }
  });

  it('supports AzureIdentity type 2 (service principal with a PFX certificate)', async () => {
    expect((await publishAs(h, 'cert-1', 'team-a', { label: 'team-cert' })).text).toBe(TEAM_A_VALUE);
  });

  it('supports AzureIdentity type 0 (user-assigned managed identity through IMDS)', async () => {
    expect((await publishAs(h, 'mi-1', 'team-a', { label: 'team-mi' })).text).toBe(TEAM_A_VALUE);
    expect(h.vault.requests.imds).toBeGreaterThan(0);
  });

  it('supports workload identity from the service account annotation, exchanging the pod\'s token', async () => {
    const tokens = { 'api://AzureADTokenExchange': podToken('api://AzureADTokenExchange', 'default', 'wi-sa', { name: 'wi-1', uid: 'x' }) };
    expect((await publishAs(h, 'wi-1', 'native', { serviceAccount: 'wi-sa', tokens })).text).toBe(TEAM_A_VALUE);
    const forged = { 'api://AzureADTokenExchange': jwt.sign({}, generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey, { algorithm: 'RS256', audience: 'api://AzureADTokenExchange', issuer: ISSUER, subject: 'system:serviceaccount:default:wi-sa', expiresIn: 600 }) };
    const refused = await publishAs(h, 'wi-2', 'native', { serviceAccount: 'wi-sa', tokens: forged });
    expect(refused.code).toBe(status.PERMISSION_DENIED);
    expect(refused.details).toMatch(/could not get a token from Entra ID/);
    const missing = await publishAs(h, 'wi-3', 'native', { serviceAccount: 'wi-sa' });
    expect(missing.details).toMatch(/workload identity needs the pod's service-account token for audience api:\/\/AzureADTokenExchange/);
  });

  it('refuses the node\'s managed identity without --allow-node-identity', async () => {
    const refused = await publishAs(h, 'node-1', 'node', { label: 'team-a' });
    expect(refused.code).toBe(status.PERMISSION_DENIED);
    expect(refused.details).toMatch(/useVMManagedIdentity .* --allow-node-identity/);
  });

  it('enforces a binding\'s podvault.dev annotations before any vault call', async () => {
    const wrongSa = await publishAs(h, 'n-1', 'team-a', { label: 'narrow', serviceAccount: 'batch' });
    expect(wrongSa.details).toMatch(/allows service accounts web, not "batch" \(annotation podvault.dev\/allowed-service-accounts\)/);
    expect((await publishAs(h, 'n-2', 'team-a', { label: 'narrow', serviceAccount: 'web' })).text).toBe(TEAM_A_VALUE);
    const before = h.vault.requests.secret ?? 0;
    const wrongObject = await publishAs(h, 'n-3', 'both', { label: 'narrow', serviceAccount: 'web' });
    expect(wrongObject.code).toBe(status.PERMISSION_DENIED);
    expect(wrongObject.details).toMatch(/may not read secret "db-user" .*not in AzureIdentityBinding default\/bind-narrow annotation podvault.dev\/allowed-objects/);
    expect(h.vault.requests.secret ?? 0).toBe(before);
  });

  it('posts a service principal\'s secret only to a known cloud\'s authority (spec.adEndpoint)', async () => {
    const identity = (name: string, adEndpoint: string) => ({ apiVersion: 'aadpodidentity.k8s.io/v1', kind: 'AzureIdentity', metadata: { name, namespace: 'default' }, spec: { type: 1, tenantID: h.vault.tenantId, clientID: 'sp-a', clientPassword: { name: 'sp-a-secret', namespace: 'default' }, adEndpoint } });
    const binding = (name: string) => ({ apiVersion: 'aadpodidentity.k8s.io/v1', kind: 'AzureIdentityBinding', metadata: { name: `bind-${name}`, namespace: 'default' }, spec: { azureIdentity: name, selector: name } });
    await h.writeObjects('ad-endpoints.yaml', [identity('id-collector', 'https://collector.example:8443'), binding('id-collector'), identity('id-usgov', 'https://login.microsoftonline.us/'), binding('id-usgov')]);
    const tokensBefore = h.vault.requests.token ?? 0;
    const refused = await publishAs(h, 'ad-1', 'team-a', { label: 'id-collector' });
    expect(refused).toMatchObject({ code: status.INVALID_ARGUMENT, details: 'AzureIdentity default/id-collector: spec.adEndpoint must be the Entra ID authority of a known cloud (https://login.microsoftonline.com, https://login.microsoftonline.us, https://login.chinacloudapi.cn)' });
    expect(h.vault.requests.token ?? 0).toBe(tokensBefore);
    expect((await publishAs(h, 'ad-2', 'team-a', { label: 'id-usgov' })).text).toBe(TEAM_A_VALUE);
  });

  it('never puts a secret value, a client secret or a token into logs or error text', () => {
    const all = h.logs.join('');
    for (const value of [TEAM_A_VALUE, TEAM_B_VALUE, SP_A_SECRET, SP_B_SECRET, PFX_PASSWORD]) expect(all).not.toContain(value);
    expect(all).not.toMatch(/eyJ[A-Za-z0-9_-]{20,}\./); // no JWT
  });
});

