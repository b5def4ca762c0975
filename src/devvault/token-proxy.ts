import { createPublicKey } from 'node:crypto';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import jwt from 'jsonwebtoken';
import { IDENTITY_BINDING_AUDIENCE } from '../identity/token-proxy-config.js';
import { VAULT_RESOURCE } from './entra.js';
import type { DevEntra } from './entra.js';
import type { TokenProxySeed } from './seed.js';
import type { VaultStore } from './store.js';
import { createTestCa } from './test-ca.js';
import { readBody, sendJson } from './http-io.js';

const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const CLOCK_SKEW_S = 60;
const MAX_BODY_BYTES = 64 * 1024;

export interface DevTokenProxy {
  /** https://127.0.0.1:PORT/ — reachable only with the SNI name below and the proxy's own CA. */
  url: string;
  caPem: string;
  sniName: string;
  close(): Promise<void>;
}

/**
 * dev-vault's AKS token proxy (identity binding). It does what the real one is documented to do:
 * accept an Entra-style client-credentials request whose client assertion is a pod's
 * service-account token for api://AKSIdentityBinding, check that token (signature against the
 * cluster's key, issuer, audience, expiry) and that its subject may use the requested managed
 * identity (the seed's `identityBinding.subjects`, standing in for the RBAC verb
 * `use-managed-identity`), and answer with a Key Vault access token for that identity. It has its
 * own CA and a certificate only for its SNI name, so a client must present that name and trust
 * that CA. What the real proxy answers on refusal is not documented; these bodies follow Entra's.
 */
export async function startTokenProxy(options: {
  seed: TokenProxySeed;
  entra: DevEntra;
  store: VaultStore;
  host: string;
  count: (kind: string) => void;
  tokenScopes: string[];
}): Promise<DevTokenProxy> {
  const { seed, entra, store, count } = options;
  const ca = createTestCa('dev-vault token proxy CA');
  const cert = ca.issueServerCert([seed.sniName], []);
  const clusterKey = createPublicKey(seed.publicKeyPem);
  let base = '';

  const server = createServer({ key: cert.keyPem, cert: cert.certPem }, (req, res) => {
    const url = new URL(req.url ?? '/', 'https://proxy');
    const discovery = /^\/([^/]+)\/(?:v2\.0\/)?\.well-known\/openid-configuration$/.exec(url.pathname);
    const token = /^\/([^/]+)\/oauth2\/v2\.0\/token$/.exec(url.pathname);
    if (req.method === 'GET' && discovery) {
      count('proxy-discovery');
      const tenant = discovery[1] ?? '';
      return sendJson(res, 200, {
        issuer: entra.issuer(),
        authorization_endpoint: `${base}${tenant}/oauth2/v2.0/authorize`,
        token_endpoint: `${base}${tenant}/oauth2/v2.0/token`,
        jwks_uri: `${base}${tenant}/discovery/v2.0/keys`,
        response_types_supported: ['code', 'id_token', 'token'],
        subject_types_supported: ['pairwise'],
        id_token_signing_alg_values_supported: ['RS256'],
      });
    }
    if (req.method === 'POST' && token) {
      count('proxy-token');
      readBody(req, MAX_BODY_BYTES)
        .then((body) => {
          const form = new URLSearchParams(body);
          options.tokenScopes.push(form.get('scope') ?? '');
          const answer = exchange(token[1] ?? '', form);
          if ('status' in answer) {
            count('proxy-refused');
            return sendJson(res, answer.status, answer.body);
          }
          return sendJson(res, 200, { token_type: 'Bearer', expires_in: answer.expiresIn, ext_expires_in: answer.expiresIn, access_token: answer.token });
        })
        .catch(() => sendJson(res, 400, oauthError('invalid_request', 'AADSTS900144: the request body is too large or unreadable.').body));
      return;
    }
    count('proxy-unknown');
    return sendJson(res, 404, { error: 'not_found', error_description: `the token proxy does not serve ${req.method} ${url.pathname}` });
  });

  function exchange(tenant: string, form: URLSearchParams): { token: string; expiresIn: number } | { status: number; body: ReturnType<typeof oauthError>['body'] } {
    if (tenant !== entra.tenantId) return { status: 400, ...oauthError('invalid_request', `AADSTS90002: Tenant '${tenant}' not found.`) };
    if (form.get('grant_type') !== 'client_credentials' || form.get('client_assertion_type') !== CLIENT_ASSERTION_TYPE) {
      return { status: 400, ...oauthError('invalid_request', 'AADSTS900144: a client_credentials grant with a jwt-bearer client assertion is required.') };
    }
    const clientId = form.get('client_id') ?? '';
    const client = store.clients.get(clientId);
    if (!client?.identityBinding) return { status: 400, ...oauthError('unauthorized_client', `AADSTS700016: no identity binding maps managed identity '${clientId}' to this cluster.`) };
    let subject: string;
    try {
      const claims = jwt.verify(form.get('client_assertion') ?? '', clusterKey, { algorithms: ['RS256', 'ES256'], audience: IDENTITY_BINDING_AUDIENCE, issuer: seed.issuer, clockTolerance: CLOCK_SKEW_S });
      subject = typeof claims === 'object' && typeof claims.sub === 'string' ? claims.sub : '';
    } catch (err) {
      const reason = err instanceof jwt.TokenExpiredError ? 'AADSTS700024: the service-account token has expired.' : /audience/.test((err as Error).message) ? `AADSTS700212: the service-account token's audience is not ${IDENTITY_BINDING_AUDIENCE}.` : /issuer/.test((err as Error).message) ? 'AADSTS700211: the service-account token is not from this cluster\'s issuer.' : 'AADSTS700027: the service-account token failed signature validation.';
      return { status: 401, ...oauthError('invalid_client', reason) };
    }
    if (!client.identityBinding.subjects.includes(subject)) {
      return { status: 403, ...oauthError('unauthorized_client', `AADSTS700213: ${subject} may not use managed identity '${clientId}' (no use-managed-identity grant).`) };
    }
    if ((form.get('scope') ?? '').replace(/\/\.default$/, '') !== VAULT_RESOURCE) {
      return { status: 400, ...oauthError('invalid_scope', `AADSTS70011: The provided value for scope ${form.get('scope') ?? ''} is not valid.`) };
    }
    return entra.accessToken(clientId);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, options.host, () => resolve());
  });
  base = `https://${options.host}:${(server.address() as AddressInfo).port}/`;
  return {
    url: base,
    caPem: ca.certPem,
    sniName: seed.sniName,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function oauthError(error: string, description: string): { body: { error: string; error_description: string; error_codes: number[] } } {
  return { body: { error, error_description: description, error_codes: [Number(/AADSTS(\d+)/.exec(description)?.[1] ?? 0)] } };
}
