import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFile } from 'node:fs/promises';
import { createPipelineRequest } from '@azure/core-rest-pipeline';
import { buildDriverConfig } from '../src/config/driver-config.js';
import { createTestCa } from '../src/devvault/test-ca.js';
import { TokenProxyClient } from '../src/identity/token-proxy.js';
import { isRoot, startHarness } from './support/harness.js';
import type { Harness } from './support/harness.js';
import { ISSUER, podToken, saKeys } from './support/identity-fixtures.js';

const AUDIENCE = 'api://AKSIdentityBinding';
const VALUE = 'ib-value-Tt4-never-log';
const CLIENT = 'ib-managed-identity';

/** Publish `className` for a pod of service account `serviceAccount` with the given kubelet tokens. */
async function publish(h: Harness, className: string, serviceAccount: string, tokens?: Record<string, string>): Promise<{ text?: string; code?: number; details?: string }> {
  const name = `ib-${Math.random().toString(16).slice(2, 10)}`;
  const uid = `uid-${name}`;
  await h.writeObjects(`pod-${name}.yaml`, [{ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'default', uid }, spec: { serviceAccountName: serviceAccount } }]);
  const v = await h.volume({ pod: name, uid, serviceAccount, className, secrets: {}, ...(tokens ? { tokens } : {}) });
  try {
    await h.client.publish(v.request);
  } catch (err) {
    const e = err as { code: number; details: string };
    return { code: e.code, details: e.details };
  }
  const text = await readFile(join(v.targetPath, 'ib-secret'), 'utf8');
  await h.client.unpublish({ volumeId: v.volumeId, targetPath: v.targetPath });
  return { text };
}

const tokenFor = (serviceAccount: string, audience = AUDIENCE) => ({ [AUDIENCE]: podToken(audience, 'default', serviceAccount, { name: serviceAccount, uid: 'x' }) });

describe.skipIf(!isRoot)('useAzureTokenProxy: AKS identity binding through the operator\'s token proxy', () => {
  let h: Harness;
  const presented: string[] = [];
  beforeAll(async () => {
    h = await startHarness({}, { tokenProxy: { issuer: ISSUER, publicKeyPem: saKeys.publicKey.export({ type: 'spki', format: 'pem' }).toString(), sniName: 'proxy.ests.aks.test' } });
    h.vault.store.setSecret('ib-secret', VALUE);
    h.vault.store.putClient({ clientId: CLIENT, managedIdentity: true, identityBinding: { subjects: ['system:serviceaccount:default:ib-sa'] }, read: ['ib-*'] });
    const objects = h.vaultParameters([{ objectName: 'ib-secret' }]);
    await h.writeClass('ib', { ...objects, useAzureTokenProxy: 'true', clientID: CLIENT });
    await h.writeClass('ib-no-client', { ...objects, useAzureTokenProxy: 'true' });
    await h.writeClass('ib-maybe', { ...objects, useAzureTokenProxy: 'maybe', clientID: CLIENT });
    await h.writeClass('ib-and-pod-identity', { ...objects, useAzureTokenProxy: 'true', clientID: CLIENT, usePodIdentity: 'true' });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('mounts the class\'s objects with the pod\'s api://AKSIdentityBinding token exchanged at the proxy, never at Entra ID', async () => {
    const entraBefore = h.vault.requests.token ?? 0;
    const tokens = tokenFor('ib-sa');
    presented.push(...Object.values(tokens));
    const r = await publish(h, 'ib', 'ib-sa', tokens);
    expect(r).toEqual({ text: VALUE });
    expect(h.vault.requests['proxy-token']).toBe(1);
    expect(h.vault.requests.token ?? 0).toBe(entraBefore);
    expect(h.vault.tokenScopes).toContain('https://vault.azure.net/.default');
  });

  it('refuses a class without clientID or with a useAzureTokenProxy that is not a boolean, naming the parameter, before the proxy is asked', async () => {
    const before = h.vault.requests['proxy-token'] ?? 0;
    expect(await publish(h, 'ib-no-client', 'ib-sa', tokenFor('ib-sa'))).toEqual({
      code: status.INVALID_ARGUMENT,
      details: 'parameter useAzureTokenProxy needs parameter clientID (the client id of the managed identity the AKS identity binding maps)',
    });
    expect(await publish(h, 'ib-maybe', 'ib-sa', tokenFor('ib-sa'))).toEqual({ code: status.INVALID_ARGUMENT, details: 'parameter useAzureTokenProxy must be "true" or "false", not "maybe"' });
    const both = await publish(h, 'ib-and-pod-identity', 'ib-sa', tokenFor('ib-sa'));
    expect(both).toEqual({ code: status.INVALID_ARGUMENT, details: 'parameters usePodIdentity and useAzureTokenProxy are mutually exclusive: set at most one' });
    expect(h.vault.requests['proxy-token'] ?? 0).toBe(before);
  });

  it('asks the proxy for Key Vault tokens only, whatever the vault\'s challenge names', async () => {
    const before = h.vault.requests['proxy-token'] ?? 0;
    h.vault.setChallengeResource('https://management.azure.com');
    try {
      // A token of its own (another lifetime), so no client of an earlier publish answers from its cache.
      const fresh = { [AUDIENCE]: podToken(AUDIENCE, 'default', 'ib-sa', { name: 'ib-sa', uid: 'x' }, 3500) };
      const refused = await publish(h, 'ib', 'ib-sa', fresh);
      expect(refused.code).toBe(status.PERMISSION_DENIED);
      expect(refused.details).toMatch(/asks for a token for resource "https:\/\/management.azure.com"; podvault asks tokens only for the Key Vault resource/);
    } finally {
      h.vault.setChallengeResource(undefined);
    }
    expect(h.vault.requests['proxy-token'] ?? 0).toBe(before);
  });

  it('without a token for api://AKSIdentityBinding in the volume context, says the CSIDriver must request it', async () => {
    const other = { 'api://AzureADTokenExchange': podToken('api://AzureADTokenExchange', 'default', 'ib-sa', { name: 'ib-sa', uid: 'x' }) };
    const refused = await publish(h, 'ib', 'ib-sa', other);
    expect(refused.code).toBe(status.PERMISSION_DENIED);
    expect(refused.details).toMatch(/useAzureTokenProxy needs the pod's service-account token for audience api:\/\/AKSIdentityBinding; the CSIDriver object must request it \(tokenRequests\)$/);
  });

  it('a token for another audience, or of a service account the identity is not bound to, is refused by the proxy: PERMISSION_DENIED without the token', async () => {
    const wrongAudience = tokenFor('ib-sa', 'api://AzureADTokenExchange');
    const otherAccount = tokenFor('intruder');
    presented.push(...Object.values(wrongAudience), ...Object.values(otherAccount));
    const audience = await publish(h, 'ib', 'ib-sa', wrongAudience);
    expect(audience.code).toBe(status.PERMISSION_DENIED);
    expect(audience.details).toContain(`the AKS token proxy ${h.vault.tokenProxy?.url} refused the pod's token for client ${CLIENT}`);
    expect(audience.details).toMatch(/invalid_client AADSTS700212$/);
    const account = await publish(h, 'ib', 'intruder', otherAccount);
    expect(account.code).toBe(status.PERMISSION_DENIED);
    expect(account.details).toMatch(/refused the pod's token for client ib-managed-identity.*unauthorized_client AADSTS700213$/);
    expect(h.vault.requests['proxy-refused']).toBe(2);
    for (const text of [audience.details, account.details]) expect(text).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}/);
  });

  it('talks to the proxy only as the operator configured it: its CA, its SNI name; a rotated CA file is read again', async () => {
    const proxy = h.vault.tokenProxy;
    if (!proxy) throw new Error('dev-vault started without its token proxy');
    const discovery = (client: TokenProxyClient) => client.sendRequest(createPipelineRequest({ url: `https://login.microsoftonline.com/${h.vault.tenantId}/v2.0/.well-known/openid-configuration`, method: 'GET' }));
    // The request's own host is never contacted: the proxy answers.
    expect((await discovery(new TokenProxyClient({ url: proxy.url, caData: proxy.caPem, sniName: proxy.sniName }))).status).toBe(200);
    await expect(discovery(new TokenProxyClient({ url: proxy.url, caData: proxy.caPem }))).rejects.toThrow(/altnames|Hostname/i);
    await expect(discovery(new TokenProxyClient({ url: proxy.url, caData: createTestCa('another CA').certPem, sniName: proxy.sniName }))).rejects.toThrow(/certificate/i);
    const caFile = join(h.classDir, '..', 'rotating-ca.pem');
    await writeFile(caFile, '');
    const rotating = new TokenProxyClient({ url: proxy.url, caFile, sniName: proxy.sniName });
    await expect(discovery(rotating)).rejects.toThrow(/its CA file .* is empty/);
    await writeFile(caFile, proxy.caPem);
    expect((await discovery(rotating)).status).toBe(200);
  });

  it('never logs the pod\'s tokens, the Key Vault token or the value', () => {
    const all = h.logs.join('');
    expect(presented.length).toBeGreaterThan(0);
    for (const token of presented) expect(all).not.toContain(token.split('.')[2]);
    expect(all).not.toContain(VALUE);
    expect(all).not.toMatch(/eyJ[A-Za-z0-9_-]{20,}\./);
  });
});

describe.skipIf(!isRoot)('useAzureTokenProxy on a driver the operator gave no token proxy', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
    h.vault.store.setSecret('ib-secret', VALUE);
    await h.writeClass('ib', { ...h.vaultParameters([{ objectName: 'ib-secret' }]), useAzureTokenProxy: 'true', clientID: CLIENT });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('is FAILED_PRECONDITION naming --azure-token-proxy: a class cannot choose where the pod\'s token goes', async () => {
    const refused = await publish(h, 'ib', 'ib-sa', tokenFor('ib-sa'));
    expect(refused.code).toBe(status.FAILED_PRECONDITION);
    expect(refused.details).toMatch(/parameter useAzureTokenProxy needs the node's AKS token proxy, and this driver runs without --azure-token-proxy \(or AZURE_KUBERNETES_TOKEN_PROXY\)$/);
  });
});

describe('the token proxy is configured by the operator, by flag or by the Azure SDKs\' variables', () => {
  it('takes AZURE_KUBERNETES_* when no flag is given, and the flags over them', () => {
    const env = { AZURE_KUBERNETES_TOKEN_PROXY: 'https://kubernetes.default.svc', AZURE_KUBERNETES_CA_FILE: '/var/run/ca.crt', AZURE_KUBERNETES_SNI_NAME: 'a1.ests.aks' };
    expect(buildDriverConfig({ nodeId: 'n' }, env).azureTokenProxy).toEqual({ url: 'https://kubernetes.default.svc', caFile: '/var/run/ca.crt', sniName: 'a1.ests.aks' });
    expect(buildDriverConfig({ nodeId: 'n', azureTokenProxy: 'https://proxy.local/ib' }, env).azureTokenProxy).toEqual({ url: 'https://proxy.local/ib' });
    expect(buildDriverConfig({ nodeId: 'n' }, {}).azureTokenProxy).toBeUndefined();
  });

  it.each([
    [{ azureTokenProxy: 'http://proxy.local' }, {}, '--azure-token-proxy must be an https:// URL'],
    [{ azureTokenProxy: 'https://user:pw@proxy.local' }, {}, '--azure-token-proxy must not contain user info'],
    [{ azureTokenProxy: 'https://proxy.local/?x=1' }, {}, '--azure-token-proxy must not contain a query'],
    [{ azureTokenProxySniName: 'a.ests.aks' }, {}, '--azure-token-proxy is not set but its CA or SNI name is'],
    [{}, { AZURE_KUBERNETES_SNI_NAME: 'a.ests.aks' }, 'AZURE_KUBERNETES_TOKEN_PROXY is not set but its CA or SNI name is'],
    [{}, { AZURE_KUBERNETES_TOKEN_PROXY: 'https://p', AZURE_KUBERNETES_CA_FILE: '/ca', AZURE_KUBERNETES_CA_DATA: 'x' }, 'mutually exclusive'],
  ])('refuses %j %j', (flags, env, message) => {
    expect(() => buildDriverConfig({ nodeId: 'n', ...flags }, env)).toThrow(message);
  });
});
