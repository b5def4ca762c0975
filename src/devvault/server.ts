import { createHash, randomUUID, X509Certificate } from 'node:crypto';
import { createServer } from 'node:https';
import { createServer as createHttpServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DevEntra, VAULT_RESOURCE } from './entra.js';
import type { Seed, TokenProxySeed } from './seed.js';
import { startTokenProxy } from './token-proxy.js';
import type { DevTokenProxy } from './token-proxy.js';
import { VaultStore } from './store.js';
import type { ObjectKind, StoredVersion } from './store.js';
import { createTestCa } from './test-ca.js';
import { readBody, sendJson } from './http-io.js';
import type { Route } from './http-io.js';
import { generateKeyVersion } from './key-crypto.js';
import { keyRoutes } from './key-routes.js';

/** Largest request body dev-vault reads (token requests are a few KiB). */
const MAX_REQUEST_BODY_BYTES = 1024 * 1024;

export const KEYVAULT_API_VERSION = '7.6';

export interface DevVaultOptions {
  seed: Seed;
  host?: string;
  port?: number;
  /** Added before every answer, like a vault in a nearby region (bench default 20 ms). */
  latencyMs?: number;
  /** Also serve an AKS token proxy (identity binding) for this cluster; overrides the seed's `tokenProxy`. */
  tokenProxy?: TokenProxySeed;
  /** Further tenants its Entra ID issues tokens in, for vaults of those tenants (see `trustTokensOf`). */
  otherTenants?: string[];
  /** The Key Vault resource of its challenge and tokens (default Azure public cloud's), for custom clouds. */
  vaultResource?: string;
}

/** A failure dev-vault injects into the next `times` authenticated vault requests matching `path`. */
export interface Fault {
  path?: RegExp;
  times: number;
  /** Answer with this status (429, 500, 503, ...) and a Key Vault error body. */
  status?: number;
  retryAfterSeconds?: number;
  /** Close the connection without an answer. */
  reset?: boolean;
  /** Hold the request this long before serving it normally (to trip client timeouts). */
  delayMs?: number;
  /** Answer with this raw body (status `status`, default 200): a malformed or hostile answer. */
  body?: string;
}

/** One authenticated vault request as dev-vault saw it. */
export interface VaultRequestRecord {
  at: number;
  path: string;
  outcome: string;
  /** The client id its token named, once checked (absent for faults and bad tokens). */
  clientId?: string;
}

export interface DevVault {
  /** https://127.0.0.1:PORT — both the vault and the Entra authority host. */
  url: string;
  tenantId: string;
  /** PEM of the CA that signed the server certificate: trust it to talk to dev-vault. */
  caPem: string;
  store: VaultStore;
  /** http://127.0.0.1:PORT — the managed identity endpoint (IMDS) for `managedIdentity` clients. */
  imdsUrl: string;
  /** Requests served, by kind (`token`, `challenge`, `secret`, `denied`, ...). */
  requests: Record<string, number>;
  /** Every authenticated vault data-plane request, in arrival order. */
  vaultLog: VaultRequestRecord[];
  injectFault(fault: Fault): void;
  clearFaults(): void;
  /**
   * A hostile vault: the 401 challenge names this resource instead of Key Vault's (e.g.
   * https://management.azure.com, to ask for an ARM token); undefined restores Key Vault's.
   */
  setChallengeResource(resource: string | undefined): void;
  /** The scope (token endpoint) or resource (IMDS) of every token request, in arrival order. */
  tokenScopes: string[];
  /** The AKS token proxy, when the seed or the options ask for one. */
  tokenProxy?: Omit<DevTokenProxy, 'close'>;
  /** The tenant of every token-endpoint request, in arrival order. */
  tokenTenants: string[];
  /** The client id of a valid access token this dev-vault's Entra ID issued in `tenant`, else undefined. */
  verifyAccessToken(token: string, tenant: string): string | undefined;
  /**
   * Make this a second vault whose Entra ID is `other`'s (several vaults, one authority): its
   * challenge names `other`'s authority with this vault's tenant, and it accepts `other`'s tokens
   * of that tenant.
   */
  trustTokensOf(other: DevVault): void;
  close(): Promise<void>;
}

/**
 * A local stand-in for Azure Key Vault's data plane and Entra ID's token endpoint, over HTTPS with
 * a throwaway CA, spoken to by the real @azure SDKs. It answers the subset of the REST API the
 * SDKs use, with Key Vault's status codes, bodies and bearer challenge.
 */
export async function startDevVault(options: DevVaultOptions): Promise<DevVault> {
  const store = new VaultStore(options.seed);
  const requests: Record<string, number> = {};
  const count = (kind: string): void => {
    requests[kind] = (requests[kind] ?? 0) + 1;
  };
  let baseUrl = '';
  const faults: Fault[] = [];
  const vaultLog: VaultRequestRecord[] = [];
  /** The log record of each request being served, so `authorize` can add who made it. */
  const logged = new WeakMap<IncomingMessage, VaultRequestRecord>();
  const tokenScopes: string[] = [];
  const tokenTenants: string[] = [];
  const vaultResource = options.vaultResource ?? VAULT_RESOURCE;
  let challengeResource = vaultResource;
  const entra = new DevEntra(store, options.seed.tenantId, () => baseUrl, options.otherTenants, vaultResource);
  let tokenAuthority: { url: string; verify: (token: string, tenant: string) => string | undefined } | undefined;
  const authorityUrl = (): string => tokenAuthority?.url ?? baseUrl;

  // A name of its own: several dev-vaults' CAs in one trust bundle must not be taken for each other.
  const ca = createTestCa(`podvault dev-vault test CA ${randomUUID().slice(0, 8)}`);
  const host = options.host ?? '127.0.0.1';
  const serverCert = ca.issueServerCert(['localhost'], [host]);
  for (const key of options.seed.keys) {
    for (let i = 0; i < key.versions; i++) {
      const pair = generateKeyVersion(key);
      store.putKey(key.name, pair.jwk, pair.privateKey);
    }
  }
  for (const c of options.seed.certificates) {
    const issued = ca.issueServerCert([c.subject], []);
    const cer = new X509Certificate(issued.certPem).raw;
    const secretValue = c.contentType === 'application/x-pkcs12' ? ca.toPfx(issued).toString('base64') : `${issued.keyPem}${issued.certPem.replace(/\r\n/g, '\n')}`;
    store.putCertificate(c.name, { cer, secretValue, contentType: c.contentType });
  }

  const routes: Array<[RegExp, string, Route]> = [
    [/^\/([^/]+)\/(?:v2\.0\/)?\.well-known\/openid-configuration$/, 'GET', (_req, res, url) => {
      count('discovery');
      const tenant = url.pathname.split('/')[1] ?? '';
      sendJson(res, 200, {
        issuer: entra.issuer(),
        authorization_endpoint: `${baseUrl}/${tenant}/oauth2/v2.0/authorize`,
        token_endpoint: `${baseUrl}/${tenant}/oauth2/v2.0/token`,
        jwks_uri: `${baseUrl}/${tenant}/discovery/v2.0/keys`,
        response_types_supported: ['code', 'id_token', 'token'],
        subject_types_supported: ['pairwise'],
        id_token_signing_alg_values_supported: ['RS256'],
        tenant_region_scope: 'NA',
      });
    }],
    [/^\/([^/]+)\/oauth2\/v2\.0\/token$/, 'POST', async (req, res, url) => {
      count('token');
      const form = new URLSearchParams(await readBody(req, MAX_REQUEST_BODY_BYTES));
      tokenScopes.push(form.get('scope') ?? '');
      const tenant = url.pathname.split('/')[1] ?? '';
      tokenTenants.push(tenant);
      const result = entra.issueToken(tenant, form, `${baseUrl}/${tenant}/oauth2/v2.0/token`);
      if ('status' in result) {
        count('token-refused');
        sendJson(res, result.status, result.body);
        return;
      }
      sendJson(res, 200, { token_type: 'Bearer', expires_in: result.expiresIn, ext_expires_in: result.expiresIn, access_token: result.token });
    }],
    ...(['secrets', 'keys', 'certificates'] as const).flatMap((kind): Array<[RegExp, string, Route]> => [
      // The vault's listing (`GET /secrets`): each object's id WITHOUT a version and its current
      // version's attributes; paged at `maxresults` (at most 25) with a $skiptoken nextLink.
      [new RegExp(`^/${kind}/?$`), 'GET', (req, res, url) => {
        const clientId = authorize(req, res, `${kind}-list`);
        if (!clientId) return;
        const names = store.names(kind).filter((name) => store.mayReadMetadata(clientId, name));
        const max = Number(url.searchParams.get('maxresults') ?? 0);
        const from = Number(url.searchParams.get('$skiptoken') ?? 0) || 0;
        const size = Math.min(25, max > 0 ? max : 25);
        const next = from + size < names.length ? `${baseUrl}/${kind}?api-version=${KEYVAULT_API_VERSION}&maxresults=${size}&$skiptoken=${from + size}` : null;
        const value = names.slice(from, from + size).map((name) => {
          const current = store.get(kind, name) as StoredVersion;
          const item = itemBody(kind, name, current);
          const unversioned = `${baseUrl}/${kind}/${name}`;
          return kind === 'keys' ? { ...item, kid: unversioned } : { ...item, id: unversioned };
        });
        sendJson(res, 200, { value, nextLink: next });
      }],
      [new RegExp(`^/${kind}/([^/]+)/versions/?$`), 'GET', (req, res, url) => {
        const clientId = authorize(req, res, `${kind}-versions`);
        if (!clientId) return;
        const name = decodeURIComponent(url.pathname.split('/')[2] ?? '');
        if (!(store.mayReadMetadata(clientId, name) || (kind === 'keys' && store.mayUseKey(clientId, name, 'get')))) return forbidden(res, clientId, kind, 'list', name);
        const versions = store.list(kind, name);
        if (!versions) return objectNotFound(res, kind, name);
        // Key Vault pages listings at `maxresults` (at most 25) with a nextLink carrying $skiptoken;
        // without maxresults dev-vault answers one page, as it always did.
        const max = Number(url.searchParams.get('maxresults') ?? 0);
        const from = Number(url.searchParams.get('$skiptoken') ?? 0) || 0;
        const size = max > 0 ? Math.min(25, max) : versions.length;
        const next = from + size < versions.length ? `${baseUrl}/${kind}/${encodeURIComponent(name)}/versions?api-version=${KEYVAULT_API_VERSION}&maxresults=${size}&$skiptoken=${from + size}` : null;
        sendJson(res, 200, { value: versions.slice(from, from + size).map((v) => itemBody(kind, name, v)), nextLink: next });
      }],
      [new RegExp(`^/${kind}/([^/]+)(?:/([^/]*))?/?$`), 'GET', (req, res, url) => {
        const clientId = authorize(req, res, kind === 'secrets' ? 'secret' : kind === 'keys' ? 'key' : 'certificate');
        if (!clientId) return;
        const [, , rawName = '', rawVersion = ''] = url.pathname.split('/');
        const name = decodeURIComponent(rawName);
        // Key Vault Reader reads keys' and certificates' properties and public parts, never a secret's value.
        const mayGet = kind === 'secrets' ? store.mayRead(clientId, name) : store.mayReadMetadata(clientId, name) || (kind === 'keys' && store.mayUseKey(clientId, name, 'get'));
        if (!mayGet) return forbidden(res, clientId, kind, 'get', name);
        const entry = store.get(kind, name, rawVersion === '' ? undefined : decodeURIComponent(rawVersion));
        if (!entry) return objectNotFound(res, kind, name);
        const expired = entry.expires !== undefined && entry.expires * 1000 < Date.now();
        if (!entry.enabled || expired) {
          const single = kind.slice(0, -1);
          const state = entry.enabled ? 'expired' : 'disabled';
          return sendJson(res, 403, { error: { code: 'Forbidden', message: `Operation get is not allowed on ${state === 'expired' ? 'an expired' : 'a disabled'} ${single}.`, innererror: { code: `${single[0]?.toUpperCase()}${single.slice(1)}${state === 'expired' ? 'Expired' : 'Disabled'}` } } });
        }
        sendJson(res, 200, fullBody(kind, name, entry));
      }],
    ]),
    ...keyRoutes({ store, authorize, forbidden, objectNotFound, keyBody: (name, v) => fullBody('keys', name, v), baseUrl: () => baseUrl }),
  ];

  function attributes(v: StoredVersion): Record<string, unknown> {
    return { enabled: v.enabled, created: v.created, updated: v.created, ...(v.expires !== undefined ? { exp: v.expires } : {}), recoveryLevel: 'Recoverable+Purgeable', recoverableDays: 90 };
  }

  /** The list form of a version (no value, no key material), as `.../versions` returns it. */
  function itemBody(kind: ObjectKind, name: string, v: StoredVersion): Record<string, unknown> {
    const id = `${baseUrl}/${kind}/${name}/${v.version}`;
    if (kind === 'keys') return { kid: id, attributes: attributes(v), tags: {} };
    if (kind === 'certificates') return { id, x5t: v.cer ? createHash('sha1').update(v.cer).digest('base64url') : undefined, attributes: attributes(v), tags: {} };
    return { id, ...(v.contentType ? { contentType: v.contentType } : {}), ...(v.kid ? { managed: true } : {}), attributes: attributes(v), tags: {} };
  }

  /** The GET form of a version, with its value, key or certificate. */
  function fullBody(kind: ObjectKind, name: string, v: StoredVersion): Record<string, unknown> {
    const id = `${baseUrl}/${kind}/${name}/${v.version}`;
    if (kind === 'keys') return { key: { ...v.jwk, kid: id, key_ops: v.jwk?.kty?.startsWith('EC') ? ['sign', 'verify'] : ['encrypt', 'decrypt', 'sign', 'verify', 'wrapKey', 'unwrapKey'] }, attributes: attributes(v), tags: {} };
    if (kind === 'certificates') {
      return { ...itemBody(kind, name, v), kid: `${baseUrl}/keys/${name}/${v.version}`, sid: `${baseUrl}/secrets/${name}/${v.version}`, cer: v.cer?.toString('base64') };
    }
    return { ...itemBody(kind, name, v), value: v.value, ...(v.kid ? { kid: `${baseUrl}/${v.kid}` } : {}) };
  }

  /** The bearer challenge on a request without a token; 401 on a bad token; the client id otherwise. */
  function authorize(req: IncomingMessage, res: ServerResponse, kind: string): string | undefined {
    const header = req.headers.authorization ?? '';
    if (!header.startsWith('Bearer ')) {
      count('challenge');
      res.setHeader('WWW-Authenticate', `Bearer authorization="${authorityUrl()}/${entra.tenantId}", resource="${challengeResource}"`);
      sendJson(res, 401, { error: { code: 'Unauthorized', message: 'AKV10000: Request is missing a Bearer or PoP token.' } });
      return undefined;
    }
    const token = header.slice('Bearer '.length);
    const clientId = tokenAuthority ? tokenAuthority.verify(token, entra.tenantId) : entra.verifyAccessToken(token);
    if (!clientId) {
      count('bad-token');
      res.setHeader('WWW-Authenticate', `Bearer authorization="${authorityUrl()}/${entra.tenantId}", resource="${vaultResource}"`);
      sendJson(res, 401, { error: { code: 'Unauthorized', message: 'AKV10022: Invalid audience, issuer or signature.' } });
      return undefined;
    }
    count(kind);
    const record = logged.get(req);
    if (record) record.clientId = clientId;
    return clientId;
  }

  function forbidden(res: ServerResponse, clientId: string, kind: ObjectKind, action: string, name: string): void {
    count('denied');
    sendJson(res, 403, {
      error: {
        code: 'Forbidden',
        message: `Caller is not authorized to perform action on resource. Caller: appid=${clientId}; Action: 'Microsoft.KeyVault/vaults/${kind}/${action}'; Resource: '${name}'`,
        innererror: { code: 'ForbiddenByRbac' },
      },
    });
  }

  function objectNotFound(res: ServerResponse, kind: ObjectKind, name: string): void {
    const single = kind === 'secrets' ? 'Secret' : kind === 'keys' ? 'Key' : 'Certificate';
    sendJson(res, 404, { error: { code: `${single}NotFound`, message: `A ${single.toLowerCase()} with (name/id) ${name} was not found in this key vault.` } });
  }

  const server: Server = createServer({ key: serverCert.keyPem, cert: serverCert.certPem }, (req, res) => {
    const url = new URL(req.url ?? '/', 'https://dev-vault');
    const route = routes.find(([pattern, method]) => method === req.method && pattern.test(url.pathname));
    if (!route) {
      count('unknown');
      sendJson(res, 404, { error: { code: 'NotFound', message: `dev-vault does not serve ${req.method} ${url.pathname}` } });
      return;
    }
    const delay = options.latencyMs ?? 0;
    const serve = async (): Promise<void> => {
      if (delay > 0) await new Promise((r) => setTimeout(r, delay));
      if (/^\/(secrets|keys|certificates)(\/|$)/.test(url.pathname) && req.headers.authorization) {
        const fault = faults.find((f) => f.times > 0 && (!f.path || f.path.test(url.pathname)));
        if (fault) {
          fault.times -= 1;
          if (fault.delayMs) {
            vaultLog.push({ at: Date.now(), path: url.pathname, outcome: 'delayed' });
            count('fault-delay');
            await new Promise((r) => setTimeout(r, fault.delayMs));
            if (!fault.reset && !fault.status) return route[2](req, res, url);
          }
          if (fault.reset) {
            vaultLog.push({ at: Date.now(), path: url.pathname, outcome: 'reset' });
            count('fault-reset');
            req.socket.destroy();
            return;
          }
          if (fault.body !== undefined) {
            vaultLog.push({ at: Date.now(), path: url.pathname, outcome: 'body' });
            count('fault-body');
            res.writeHead(fault.status ?? 200, { 'content-type': 'application/json; charset=utf-8' });
            res.end(fault.body);
            return;
          }
          if (fault.status) {
            vaultLog.push({ at: Date.now(), path: url.pathname, outcome: String(fault.status) });
            count(`fault-${fault.status}`);
            if (fault.retryAfterSeconds !== undefined) res.setHeader('Retry-After', String(fault.retryAfterSeconds));
            const code = fault.status === 429 ? 'Throttled' : 'InternalServerError';
            return sendJson(res, fault.status, { error: { code, message: fault.status === 429 ? 'Rate limit is exceeded. Try again later.' : 'An unexpected error occurred.' } });
          }
        }
        const record: VaultRequestRecord = { at: Date.now(), path: url.pathname, outcome: 'served' };
        vaultLog.push(record);
        logged.set(req, record);
      }
      await route[2](req, res, url);
    };
    const handled = serve();
    handled.catch((err: unknown) => {
      sendJson(res, 500, { error: { code: 'InternalError', message: err instanceof Error ? err.message : 'error' } });
    });
  });

  server.on('secureConnection', () => count('tls-connections'));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  baseUrl = `https://${host}:${port}`;

  // IMDS, as the Azure SDK's managed identity credential calls it (plain HTTP, `Metadata: true`).
  const imds = createHttpServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://imds');
    if (req.method !== 'GET' || !/^\/metadata\/identity\/oauth2\/token\/?$/.test(url.pathname)) {
      count('imds-unknown');
      return sendJson(res, 404, { error: 'not_found', error_description: `dev-vault IMDS does not serve ${req.method} ${url.pathname}` });
    }
    if (req.headers.metadata !== 'true') return sendJson(res, 400, { error: 'invalid_request', error_description: 'Required metadata header not specified' });
    const resource = (url.searchParams.get('resource') ?? '').replace(/\/$/, '');
    tokenScopes.push(url.searchParams.get('resource') ?? '');
    const clientId = url.searchParams.get('client_id');
    const resourceId = url.searchParams.get('msi_res_id') ?? url.searchParams.get('mi_res_id');
    const client = [...store.clients.values()].find((c) => c.managedIdentity && (clientId ? c.clientId === clientId : resourceId ? c.resourceId === resourceId : false));
    count('imds');
    if (resource !== vaultResource) return sendJson(res, 400, { error: 'invalid_resource', error_description: `AADSTS500011: resource ${resource} not found` });
    if (!client) return sendJson(res, 400, { error: 'invalid_request', error_description: 'Identity not found' });
    const token = entra.accessToken(client.clientId);
    const expiresOn = Math.floor(Date.now() / 1000) + token.expiresIn;
    return sendJson(res, 200, { access_token: token.token, expires_on: String(expiresOn), expires_in: String(token.expiresIn), resource: vaultResource, token_type: 'Bearer', client_id: client.clientId });
  });
  await new Promise<void>((resolve) => imds.listen(0, host, () => resolve()));
  const imdsUrl = `http://${host}:${(imds.address() as AddressInfo).port}`;
  const proxySeed = options.tokenProxy ?? options.seed.tokenProxy;
  const proxy = proxySeed ? await startTokenProxy({ seed: proxySeed, entra, store, host, count, tokenScopes }) : undefined;

  return {
    url: baseUrl,
    tenantId: entra.tenantId,
    caPem: ca.certPem,
    imdsUrl,
    store,
    requests,
    vaultLog,
    injectFault: (fault) => faults.push({ ...fault }),
    clearFaults: () => faults.splice(0, faults.length),
    setChallengeResource: (resource) => {
      challengeResource = resource ?? vaultResource;
    },
    tokenScopes,
    ...(proxy ? { tokenProxy: { url: proxy.url, caPem: proxy.caPem, sniName: proxy.sniName } } : {}),
    tokenTenants,
    verifyAccessToken: (token, tenant) => entra.verifyAccessToken(token, tenant),
    trustTokensOf: (other) => {
      tokenAuthority = { url: other.url, verify: (token, tenant) => other.verifyAccessToken(token, tenant) };
    },
    close: async () => {
      await proxy?.close();
      for (const s of [server, imds]) {
        s.closeAllConnections();
        await new Promise<void>((resolve) => s.close(() => resolve()));
      }
    },
  };
}
