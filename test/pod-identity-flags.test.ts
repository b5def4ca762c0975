import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isRoot, startHarness } from './support/harness.js';
import type { Harness } from './support/harness.js';
import { publishAs, setUp, TEAM_A_VALUE } from './support/identity-fixtures.js';

// Its own file, hence its own process: the Azure SDK keeps managed-identity state process-wide
// (IMDS address, token cache), and this dev-vault is not the one the other file's driver used.
describe.skipIf(!isRoot)('with --cluster-wide-bindings and --allow-node-identity', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ clusterWideBindings: true, allowNodeIdentity: true });
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
});
