import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDriverConfig } from '../src/config/driver-config.js';
import { isRoot, startHarness } from './support/harness.js';
import type { Harness } from './support/harness.js';
import { publishAs, setUp, TEAM_A_VALUE } from './support/identity-fixtures.js';

const RESOURCE_ID = '/subscriptions/0000/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/mi-res';

// Its own file, hence its own process: the Azure SDK keeps managed-identity state process-wide.
describe.skipIf(!isRoot)('type 0 AzureIdentities: only the managed identities the operator granted to the namespace', () => {
  let h: Harness;
  beforeAll(async () => {
    // mi-a granted to default (the id compared case-insensitively), mi-res granted by resource id,
    // mi-node is the node's own identity: granted to every namespace, still refused.
    h = await startHarness({ allowManagedIdentity: ['default=MI-A', `default=${RESOURCE_ID.toUpperCase()}/`, '*=mi-node', 'team-x=mi-b'], nodeManagedIdentity: ['MI-NODE'] });
    await setUp(h);
    h.vault.store.putClient({ clientId: 'mi-b', managedIdentity: true, read: ['team-a-*'] });
    h.vault.store.putClient({ clientId: 'mi-node', managedIdentity: true, read: ['team-a-*'] });
    h.vault.store.putClient({ clientId: 'mi-res', resourceId: RESOURCE_ID, managedIdentity: true, read: ['team-a-*'] });
    const identity = (name: string, spec: Record<string, unknown>) => ({ apiVersion: 'aadpodidentity.k8s.io/v1', kind: 'AzureIdentity', metadata: { name, namespace: 'default' }, spec: { type: 0, ...spec } });
    const binding = (name: string, selector: string) => ({ apiVersion: 'aadpodidentity.k8s.io/v1', kind: 'AzureIdentityBinding', metadata: { name: `bind-${name}`, namespace: 'default' }, spec: { azureIdentity: name, selector } });
    await h.writeObjects('managed.yaml', [
      identity('id-mi-b', { clientID: 'mi-b' }),
      identity('id-node', { clientID: 'mi-node' }),
      identity('id-res', { resourceID: RESOURCE_ID }),
      binding('id-mi-b', 'mi-b'),
      binding('id-node', 'mi-node'),
      binding('id-res', 'mi-res'),
    ]);
  });
  afterAll(async () => {
    await h?.close();
  });

  it('uses a managed identity granted to the pod\'s namespace, by client id or resource id', async () => {
    expect((await publishAs(h, 'mi-ok', 'team-a', { label: 'team-mi' })).text).toBe(TEAM_A_VALUE);
    expect((await publishAs(h, 'mi-res', 'team-a', { label: 'mi-res' })).text).toBe(TEAM_A_VALUE);
  });

  it('refuses a managed identity granted only to another namespace, before asking IMDS', async () => {
    const before = h.vault.requests.imds ?? 0;
    const refused = await publishAs(h, 'mi-b-1', 'team-a', { label: 'mi-b' });
    expect(refused).toMatchObject({
      code: status.PERMISSION_DENIED,
      details: 'AzureIdentity default/id-mi-b: type 0 (managed identity mi-b) is not allowed for namespace default; the node\'s operator allows a managed identity per namespace with --allow-managed-identity default=<client or resource id>',
    });
    expect(refused.details).not.toContain('team-x');
    expect(h.vault.requests.imds ?? 0).toBe(before);
  });

  it('refuses the node\'s own identity without --allow-node-identity, even where granted', async () => {
    const before = h.vault.requests.imds ?? 0;
    const refused = await publishAs(h, 'mi-node-1', 'team-a', { label: 'mi-node' });
    expect(refused.code).toBe(status.PERMISSION_DENIED);
    expect(refused.details).toMatch(/^AzureIdentity default\/id-node: managed identity mi-node is the node's own identity \(--node-managed-identity\).*without --allow-node-identity$/);
    expect(h.vault.requests.imds ?? 0).toBe(before);
  });

  it('the still-serving driver keeps refusing useVMManagedIdentity without --allow-node-identity', async () => {
    const refused = await publishAs(h, 'node-x', 'node', { label: 'team-a' });
    expect(refused.details).toMatch(/--allow-node-identity/);
    expect((await publishAs(h, 'mi-ok-2', 'team-a', { label: 'team-mi' })).text).toBe(TEAM_A_VALUE);
  });
});

describe('--allow-managed-identity and --node-managed-identity flags', () => {
  it('parse NAMESPACE=ID (namespace or *), ids lower-cased, and name the flag when malformed', () => {
    const config = buildDriverConfig({ nodeId: 'n', allowManagedIdentity: ['shop=ABC-1', '*=/subscriptions/S/x/'], nodeManagedIdentity: ['Kubelet-ID'] }, {});
    expect(config.managedIdentityGrants).toEqual([{ namespace: 'shop', id: 'abc-1' }, { namespace: '*', id: '/subscriptions/s/x' }]);
    expect(config.nodeManagedIdentities).toEqual(['kubelet-id']);
    expect(buildDriverConfig({ nodeId: 'n' }, {}).managedIdentityGrants).toEqual([]);
    expect(() => buildDriverConfig({ nodeId: 'n', allowManagedIdentity: ['abc-1'] }, {})).toThrow(/^--allow-managed-identity: "abc-1" must be NAMESPACE=ID/);
    expect(() => buildDriverConfig({ nodeId: 'n', allowManagedIdentity: ['Shop=abc'] }, {})).toThrow(/--allow-managed-identity/);
    expect(() => buildDriverConfig({ nodeId: 'n', nodeManagedIdentity: ['a b'] }, {})).toThrow(/^--node-managed-identity: "a b" is not a managed identity/);
  });
});
