import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isRoot, rpcError, startHarness } from './support/harness.js';
import type { Harness } from './support/harness.js';

/**
 * A hostile or broken vault origin answers 200 with a body that is not the JSON the SDK expects,
 * with a secret value in it. The SDK's error message quotes that body; before causes were reduced
 * to safe fields it reached the driver log at warn. The publish must fail clearly, and no log line,
 * status message or event may carry the value.
 */
describe.skipIf(!isRoot)('nothing an answer body holds reaches a log or a status message', () => {
  const VALUE = 'leak-Qv93-never-log-me';
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
    await h.writeClass('app', h.vaultParameters([{ objectName: 'db-user' }]));
  });
  afterAll(async () => {
    await h?.close();
  });

  it.each([
    ['a truncated JSON body', `{"value":"${VALUE}","id":`],
    ['a body that is not JSON at all', `value=${VALUE}`],
    ['an error body with the value in its message', `{"error":{"code":"Boom","message":"${VALUE}"}}`],
  ])('%s', async (_name, body) => {
    h.vault.injectFault({ path: /^\/secrets\/db-user\//, times: 1, body, ...(body.startsWith('{"error"') ? { status: 400 } : {}) });
    const before = h.logs.length;
    const v = await h.volume();
    const err = await rpcError(h.client.publish(v.request));
    expect([status.INTERNAL, status.UNAVAILABLE, status.INVALID_ARGUMENT]).toContain(err.code);
    expect(err.details).toMatch(/db-user/);
    expect(err.details).not.toContain(VALUE);
    const lines = h.logs.slice(before).join('\n');
    expect(lines).toMatch(/"cause"/); // the failure was logged, reduced to its safe fields
    expect(lines).not.toContain(VALUE);
    // and the driver keeps serving
    h.vault.clearFaults();
    await h.client.publish(v.request);
    await h.client.unpublish({ volumeId: v.volumeId, targetPath: v.targetPath });
  });
});
