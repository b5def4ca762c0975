import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isRoot, rpcError, startHarness } from './support/harness.js';
import type { Harness } from './support/harness.js';
import { publishAs, setUp, TEAM_A_VALUE } from './support/identity-fixtures.js';

const binding = (name: string, namespace: string, spec: Record<string, unknown>, annotations?: Record<string, string>) => ({
  apiVersion: 'aadpodidentity.k8s.io/v1',
  kind: 'AzureIdentityBinding',
  metadata: { name, namespace, ...(annotations ? { annotations } : {}) },
  spec,
});

/** Denial messages land in the requesting pod's events: they name only it and its namespace's objects. */
describe.skipIf(!isRoot)('denials name only the requesting pod and objects of its own namespace', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
    await setUp(h);
    await h.writeObjects('leaky.yaml', [
      { apiVersion: 'aadpodidentity.k8s.io/v1', kind: 'AzureIdentity', metadata: { name: 'id-leaky', namespace: 'default' }, spec: { type: 1, tenantID: h.vault.tenantId, clientID: 'sp-a', clientPassword: { name: 'sp-a-secret', namespace: 'team-x' } } },
      binding('bind-leaky', 'default', { azureIdentity: 'id-leaky', selector: 'leaky' }),
      { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'victim-pod', namespace: 'default', uid: 'uid-real-victim-0001', labels: { aadpodidbinding: 'team-a' } }, spec: {} },
    ]);
  });
  afterAll(async () => {
    await h?.close();
  });

  it('a uid mismatch names only the uid the kubelet reported, never the API pod\'s', async () => {
    await h.writeClass('team-a-x', { ...h.vaultParameters([{ objectName: 'team-a-secret' }]), usePodIdentity: 'true' });
    const v = await h.volume({ pod: 'victim-pod', uid: 'uid-attacker-0001', className: 'team-a-x', secrets: {} });
    const err = await rpcError(h.client.publish(v.request));
    expect(err).toEqual({ code: status.PERMISSION_DENIED, details: 'no identity for pod default/victim-pod: the pod of that name in the Kubernetes API is not the one the kubelet reported (uid uid-attacker-0001)' });
    expect(h.logs.join('')).toContain('uid-real-victim-0001'); // the operator still sees it
  });

  it('an identity whose clientPassword lies in another namespace is refused without naming that namespace', async () => {
    const refused = await publishAs(h, 'leaky-1', 'team-a', { label: 'leaky' });
    expect(refused).toMatchObject({ code: status.PERMISSION_DENIED, details: 'AzureIdentity default/id-leaky: its clientPassword Secret lives outside the pod\'s namespace default' });
    expect(h.logs.join('')).toMatch(/Secret team-x\/sp-a-secret is outside/);
  });
});

describe.skipIf(!isRoot)('with --cluster-wide-bindings, other namespaces\' bindings are used but not named', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ clusterWideBindings: true });
    await setUp(h);
    await h.writeObjects('foreign.yaml', [
      binding('ghost-binding', 'team-x', { azureIdentity: 'ghost-identity', selector: 'ghost' }),
      binding('narrow-binding', 'team-x', { azureIdentity: 'id-other-ns', selector: 'sa-narrow' }, { 'podvault.dev/allowed-service-accounts': 'team-x-private-sa' }),
      binding('broken-binding', 'team-y', { azureIdentity: 'whatever' }), // no selector: malformed
      binding('mi-binding', 'team-x', { azureIdentity: 'team-x-mi', selector: 'foreign-mi' }),
      {
        apiVersion: 'aadpodidentity.k8s.io/v1',
        kind: 'AzureIdentity',
        metadata: { name: 'team-x-mi', namespace: 'team-x' },
        spec: { type: 0, resourceID: '/subscriptions/0f0f0f0f-private-sub/resourceGroups/rg-x/providers/Microsoft.ManagedIdentity/userAssignedIdentities/mi-x' },
      },
    ]);
  });
  afterAll(async () => {
    await h?.close();
  });

  it('a foreign binding naming a missing identity, or narrowing service accounts, is described, not named', async () => {
    const ghost = await publishAs(h, 'g-1', 'team-a', { label: 'ghost' });
    expect(ghost).toMatchObject({ code: status.PERMISSION_DENIED, details: 'no identity for pod default/g-1: an AzureIdentityBinding of another namespace names an AzureIdentity of another namespace, which does not exist' });
    const narrow = await publishAs(h, 'n-1', 'team-a', { label: 'sa-narrow' });
    expect(narrow).toMatchObject({ code: status.PERMISSION_DENIED, details: 'no identity for pod default/n-1: an AzureIdentityBinding of another namespace does not allow service account "default" (annotation podvault.dev/allowed-service-accounts)' });
    for (const text of [ghost.details, narrow.details]) expect(text).not.toMatch(/team-x|ghost-|team-x-private-sa|narrow-binding/);
    expect(h.logs.join('')).toMatch(/AzureIdentityBinding team-x\/ghost-binding names AzureIdentity team-x\/ghost-identity/);
  });

  it('a foreign managed identity that is not allowed is refused without its id (which holds the subscription)', async () => {
    const refused = await publishAs(h, 'mi-1', 'team-a', { label: 'foreign-mi' });
    expect(refused).toMatchObject({
      code: status.PERMISSION_DENIED,
      details: 'an AzureIdentity of another namespace: its managed identity is not allowed for namespace default (--allow-managed-identity, --allow-node-identity)',
    });
    expect(refused.details).not.toMatch(/0f0f0f0f|mi-x|team-x/);
    expect(h.logs.join('')).toMatch(/type 0 \(managed identity \/subscriptions\/0f0f0f0f-private-sub\/.*\/mi-x\) is not allowed/); // the operator's log has it
  });

  it('a malformed binding of another namespace is skipped and logged, not told to (or failing) other tenants', async () => {
    expect((await publishAs(h, 'ok-1', 'team-a', { label: 'team-a' })).text).toBe(TEAM_A_VALUE);
    expect(h.logs.join('')).toMatch(/"binding":"team-y\/broken-binding".*skipping a malformed AzureIdentityBinding of another namespace/);
  });
});
