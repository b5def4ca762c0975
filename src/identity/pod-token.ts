import { createPublicKey } from 'node:crypto';
import type { JsonWebKey, KeyObject } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { permissionDenied, unavailable } from '../errors/podvault-error.js';
import { podRef } from './pod-info.js';
import type { PodInfo } from './pod-info.js';

/** Where the cluster's service-account token keys come from (the API server's OIDC discovery). */
export interface ServiceAccountKeySource {
  readonly description: string;
  /** The JWKS document (`/openid/v1/jwks`) and the issuer (`/.well-known/openid-configuration`). */
  fetch(): Promise<{ issuer: string; jwks: unknown }>;
}

/** Minimum time between two key refreshes triggered by an unknown `kid`. */
const REFRESH_INTERVAL_MS = 30_000;

interface KeySet {
  issuer: string;
  keys: Map<string, KeyObject>;
  fetchedAt: number;
}

/**
 * Proof of who is asking: the bound service-account token the kubelet requested for podvault's
 * audience (CSIDriver `tokenRequests`) must be signed by the cluster's issuer, be for this
 * audience, be unexpired, and name exactly the pod of the volume context (namespace, name, uid,
 * service account). Keys are cached and refetched when a token names a key we do not know (the
 * cluster rotated its signing key), at most every 30 s.
 */
export class PodTokenVerifier {
  private keySet?: KeySet;
  private refreshing?: Promise<KeySet>;

  constructor(
    private readonly source: ServiceAccountKeySource,
    readonly audience: string,
  ) {}

  async verify(token: string, pod: PodInfo): Promise<void> {
    const who = `pod ${podRef(pod)}`;
    const decoded = jwt.decode(token, { complete: true });
    if (!decoded || typeof decoded.payload !== 'object') throw permissionDenied(`service-account token of ${who} refused: not a JWT`);
    const kid = decoded.header.kid ?? '';
    let keys = await this.keys(false);
    if (!keys.keys.has(kid) && Date.now() - keys.fetchedAt > REFRESH_INTERVAL_MS) keys = await this.keys(true);
    const key = keys.keys.get(kid) ?? (keys.keys.size === 1 && kid === '' ? [...keys.keys.values()][0] : undefined);
    if (!key) throw permissionDenied(`service-account token of ${who} refused: signed with a key the cluster does not publish`);

    let claims: jwt.JwtPayload;
    try {
      claims = jwt.verify(token, key, { algorithms: ['RS256', 'ES256'], audience: this.audience, issuer: keys.issuer }) as jwt.JwtPayload;
    } catch (err) {
      const reason =
        err instanceof jwt.TokenExpiredError ? 'expired' : err instanceof jwt.NotBeforeError ? 'not yet valid' : err instanceof Error ? err.message.replace(/\. expected:.*/, '') : 'invalid';
      throw permissionDenied(`service-account token of ${who} refused: ${reason}`);
    }
    const k8s = (claims['kubernetes.io'] ?? {}) as { namespace?: unknown; pod?: { name?: unknown; uid?: unknown }; serviceaccount?: { name?: unknown } };
    const mismatch = (claim: string, actual: unknown, expected: string): void => {
      if (actual !== expected) throw permissionDenied(`service-account token of ${who} refused: its ${claim} is not the volume's (${expected})`);
    };
    mismatch('kubernetes.io.namespace', k8s.namespace, pod.namespace);
    mismatch('kubernetes.io.pod.name', k8s.pod?.name, pod.name);
    if (pod.uid !== '') mismatch('kubernetes.io.pod.uid', k8s.pod?.uid, pod.uid);
    if (pod.serviceAccount !== '') {
      mismatch('kubernetes.io.serviceaccount.name', k8s.serviceaccount?.name, pod.serviceAccount);
      mismatch('sub', claims.sub, `system:serviceaccount:${pod.namespace}:${pod.serviceAccount}`);
    }
  }

  private async keys(force: boolean): Promise<KeySet> {
    if (this.keySet && !force) return this.keySet;
    this.refreshing ??= this.load().finally(() => {
      this.refreshing = undefined;
    });
    this.keySet = await this.refreshing;
    return this.keySet;
  }

  private async load(): Promise<KeySet> {
    let fetched: { issuer: string; jwks: unknown };
    try {
      fetched = await this.source.fetch();
    } catch (err) {
      throw unavailable(`cannot read the service-account token keys from ${this.source.description}`, err);
    }
    const keys = new Map<string, KeyObject>();
    const list = (fetched.jwks as { keys?: unknown } | null)?.keys;
    for (const jwk of Array.isArray(list) ? list : []) {
      try {
        keys.set(typeof jwk.kid === 'string' ? jwk.kid : '', createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' }));
      } catch {
        // A key type we cannot use: skip it; tokens signed with it are refused as unknown.
      }
    }
    return { issuer: fetched.issuer, keys, fetchedAt: Date.now() };
  }
}
