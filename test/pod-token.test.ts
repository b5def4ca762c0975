import { generateKeyPairSync } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import jwt from 'jsonwebtoken';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubeApiDouble } from './support/kube-api-double.js';
import { isRoot, rpcError, startHarness } from './support/harness.js';
import type { Harness } from './support/harness.js';

const AUDIENCE = 'csi.podvault.dev';
const clusterKey = generateKeyPairSync('rsa', { modulusLength: 2048 });
const foreignKey = generateKeyPairSync('rsa', { modulusLength: 2048 });

describe('--require-pod-token: each publish proves its pod with a bound service-account token', () => {
  let api: KubeApiDouble;
  let h: Harness;

  beforeAll(async () => {
    api = await new KubeApiDouble().start();
    api.serviceAccountKeys = [{ ...clusterKey.publicKey.export({ format: 'jwk' }), kid: 'cluster-key-1', use: 'sig', alg: 'RS256' }];
    const kubeconfig = await api.writeKubeconfig();
    h = await startHarness({ standalone: undefined, kubeconfig, requirePodToken: true });
    api.put('secretproviderclasses', {
      apiVersion: 'secrets-store.csi.x-k8s.io/v1',
      kind: 'SecretProviderClass',
      metadata: { name: 'app', namespace: 'default' },
      spec: { provider: 'azure', parameters: h.vaultParameters([{ objectName: 'db-user' }]) },
    });
  });
  afterAll(async () => {
    await h?.close();
    await api?.close();
  });

  /** A token as the kubelet gets it for a pod: signed by the cluster's key, bound to the pod. */
  function token(claims: { namespace: string; pod: string; uid: string; sa: string }, options: { key?: typeof clusterKey.privateKey; audience?: string; expiresIn?: number; kid?: string } = {}): string {
    return jwt.sign(
      { 'kubernetes.io': { namespace: claims.namespace, pod: { name: claims.pod, uid: claims.uid }, serviceaccount: { name: claims.sa, uid: 'sa-uid' } } },
      options.key ?? clusterKey.privateKey,
      { algorithm: 'RS256', keyid: options.kid ?? 'cluster-key-1', audience: options.audience ?? AUDIENCE, issuer: api.issuer, subject: `system:serviceaccount:${claims.namespace}:${claims.sa}`, expiresIn: options.expiresIn ?? 3600 },
    );
  }

  async function publishWithToken(tok: string | undefined, pod = 'web-1'): Promise<{ code: number; details: string } | 'ok'> {
    const uid = `uid-${pod}`;
    const v = await h.volume({ pod, uid, serviceAccount: 'web', ...(tok ? { tokens: { [AUDIENCE]: tok } } : {}) });
    try {
      await h.client.publish(v.request);
    } catch (err) {
      return err as { code: number; details: string };
    }
    await h.client.unpublish({ volumeId: v.volumeId, targetPath: v.targetPath });
    return 'ok';
  }

  it.skipIf(!isRoot)('accepts the pod\'s own token, verified against /openid/v1/jwks', async () => {
    expect(await publishWithToken(token({ namespace: 'default', pod: 'web-1', uid: 'uid-web-1', sa: 'web' }))).toBe('ok');
    expect(api.requests).toContain('GET /openid/v1/jwks');
  });

  const refusals: Array<[string, () => string | undefined, RegExp]> = [
    ['no token', () => undefined, /no service-account token for audience csi.podvault.dev .* --require-pod-token/],
    ['a forged token (signed by another key)', () => token({ namespace: 'default', pod: 'web-1', uid: 'uid-web-1', sa: 'web' }, { key: foreignKey.privateKey }), /refused: invalid signature/],
    ['a token naming a key the cluster does not publish', () => token({ namespace: 'default', pod: 'web-1', uid: 'uid-web-1', sa: 'web' }, { key: foreignKey.privateKey, kid: 'other' }), /signed with a key the cluster does not publish/],
    ['an expired token', () => token({ namespace: 'default', pod: 'web-1', uid: 'uid-web-1', sa: 'web' }, { expiresIn: -10 }), /refused: expired/],
    ['another pod\'s token', () => token({ namespace: 'default', pod: 'web-2', uid: 'uid-web-2', sa: 'web' }), /its kubernetes.io.pod.name is not the volume's \(web-1\)/],
    ['a token of another namespace', () => token({ namespace: 'team-b', pod: 'web-1', uid: 'uid-web-1', sa: 'web' }), /its kubernetes.io.namespace is not the volume's \(default\)/],
    ['a token of a recreated pod (same name, other uid)', () => token({ namespace: 'default', pod: 'web-1', uid: 'uid-old', sa: 'web' }), /its kubernetes.io.pod.uid is not the volume's/],
    ['a token of another service account', () => token({ namespace: 'default', pod: 'web-1', uid: 'uid-web-1', sa: 'admin' }), /kubernetes.io.serviceaccount.name is not the volume's \(web\)/],
    ['a token for another audience', () => token({ namespace: 'default', pod: 'web-1', uid: 'uid-web-1', sa: 'web' }, { audience: 'vault' }), /refused: jwt audience invalid/],
  ];
  it.each(refusals)('refuses %s with PERMISSION_DENIED', async (_name, make, message) => {
    const result = await publishWithToken(make());
    expect(result).not.toBe('ok');
    const err = result as { code: number; details: string };
    expect(err.code).toBe(status.PERMISSION_DENIED);
    expect(err.details).toMatch(message);
    expect(err.details).not.toMatch(/eyJ/);
  });

  it('keeps the token out of the logs', async () => {
    await rpcError(h.client.publish((await h.volume({ tokens: { [AUDIENCE]: token({ namespace: 'default', pod: 'x', uid: 'y', sa: 'z' }) } })).request));
    expect(h.logs.join('')).not.toMatch(/eyJ[A-Za-z0-9_-]{20,}\./);
  });
});
