import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isRoot, startHarness } from './support/harness.js';
import type { Harness } from './support/harness.js';
import { publishAs, setUp, TEAM_A_VALUE } from './support/identity-fixtures.js';

// Its own file, hence its own process: the Azure SDK keeps managed-identity state process-wide
// (IMDS address, token cache), and this dev-vault is not the one the other file's driver used.
describe.skipIf(!isRoot)('with --cluster-wide-bindings and --allow-node-identity', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ clusterWideBindings: true, allowNodeIdentity: true, nodeManagedIdentity: ['mi-a'] });
    await setUp(h);
  });
  afterAll(async () => {
    await h?.close();
  });

  it('honours a binding of another namespace', async () => {
    expect((await publishAs(h, 'x-1', 'team-a', { label: 'foreign' })).text).toBe(TEAM_A_VALUE);
  });

  it('lets a class use the node identity', async () => {
    expect((await publishAs(h, 'node-2', 'node', { label: 'team-a' })).text).toBe(TEAM_A_VALUE);
  });

  it('still refuses a userAssignedIdentityID that is not one of the node\'s (--node-managed-identity) nor granted', async () => {
    await h.writeClass('node-other', { ...h.vaultParameters([{ objectName: 'team-a-secret' }]), useVMManagedIdentity: 'true', userAssignedIdentityID: 'some-tenants-mi' });
    const refused = await publishAs(h, 'node-3', 'node-other', { label: 'team-a' });
    expect(refused).toMatchObject({ code: status.PERMISSION_DENIED, details: 'no identity for pod default/node-3: userAssignedIdentityID some-tenants-mi is neither one of the node\'s identities (--node-managed-identity) nor allowed for namespace default (--allow-managed-identity)' });
  });
});
