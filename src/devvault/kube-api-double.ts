import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createServer } from 'node:http';
import type { Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { stringify } from 'yaml';

/** A stored object of the double: any Kubernetes object with apiVersion, kind and metadata. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; resourceVersion?: string; [k: string]: unknown };
  [k: string]: unknown;
}

interface Watcher {
  prefix: string;
  namespace: string;
  res: ServerResponse;
}

/**
 * A local Kubernetes API server double speaking the real REST wire format over HTTP: GET of one
 * object, LIST, and WATCH (`?watch=true`, one JSON event per line, kept open) for namespaced
 * resources of core (`/api/v1`) and groups (`/apis/<group>/<version>`), with Status bodies on
 * errors; LISTs honour equality `fieldSelector`s. Tests put objects in and see every request the client made;
 * the bench (`bench/publish.ts`) serves its Kubernetes-mode driver from it.
 */
export class KubeApiDouble {
  private readonly objects = new Map<string, KubeObject>();
  private readonly watchers = new Set<Watcher>();
  private server?: Server;
  private resourceVersion = 100;
  /** `METHOD path?query` of every request, in order. */
  readonly requests: string[] = [];
  /** Bodies of the objects clients created with POST (Events). */
  readonly created: object[] = [];
  /** When set, every request answers this HTTP status (an API server outage). */
  failWith?: number;
  /** Service-account token issuer and its public keys, served by the OIDC discovery endpoints. */
  issuer = 'https://kubernetes.default.svc.cluster.local';
  serviceAccountKeys: object[] = [];
  url = '';

  private tmpDir = '';

  async start(): Promise<this> {
    this.tmpDir = await mkdtemp('/dev/shm/podvault-api-double-');
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        let body: unknown;
        try {
          body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : undefined;
        } catch {
          body = undefined;
        }
        this.handle(req.method ?? 'GET', req.url ?? '/', req.headers.authorization, res, body);
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async close(): Promise<void> {
    for (const w of this.watchers) w.res.end();
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
    await rm(this.tmpDir, { recursive: true, force: true });
  }

  /** A kubeconfig file for @kubernetes/client-node pointing at this double (removed on close). */
  async writeKubeconfig(path = join(this.tmpDir, 'kubeconfig'), token = 'test-token'): Promise<string> {
    await writeFile(
      path,
      stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'double', cluster: { server: this.url, 'insecure-skip-tls-verify': true } }],
        users: [{ name: 'driver', user: { token } }],
        contexts: [{ name: 'double', context: { cluster: 'double', user: 'driver' } }],
        'current-context': 'double',
      }),
    );
    return path;
  }

  /** Create or replace an object; watchers of its resource see ADDED or MODIFIED. */
  put(plural: string, object: KubeObject): void {
    const prefix = apiPrefix(object.apiVersion);
    const ns = object.metadata.namespace ?? 'default';
    const key = `${prefix}/namespaces/${ns}/${plural}/${object.metadata.name}`;
    const existed = this.objects.has(key);
    const stored = { ...object, metadata: { ...object.metadata, namespace: ns, resourceVersion: String(++this.resourceVersion) } };
    this.objects.set(key, stored);
    this.notify(`${prefix}/namespaces/${ns}/${plural}`, ns, existed ? 'MODIFIED' : 'ADDED', stored);
  }

  delete(plural: string, apiVersion: string, namespace: string, name: string): void {
    const prefix = apiPrefix(apiVersion);
    const key = `${prefix}/namespaces/${namespace}/${plural}/${name}`;
    const existing = this.objects.get(key);
    if (!existing) return;
    this.objects.delete(key);
    this.notify(`${prefix}/namespaces/${namespace}/${plural}`, namespace, 'DELETED', existing);
  }

  private notify(prefix: string, namespace: string, type: string, object: KubeObject): void {
    for (const w of this.watchers) {
      if (w.prefix === prefix && w.namespace === namespace) w.res.write(`${JSON.stringify({ type, object })}\n`);
    }
  }

  private handle(method: string, rawUrl: string, authorization: string | undefined, res: ServerResponse, body?: unknown): void {
    this.requests.push(`${method} ${rawUrl}`);
    if (this.failWith) return sendStatus(res, this.failWith, 'InternalError', 'the API server double is failing on purpose');
    if (authorization !== 'Bearer test-token') return sendStatus(res, 401, 'Unauthorized', 'Unauthorized');
    const url = new URL(rawUrl, 'http://double');
    if (method === 'POST' && body !== undefined) {
      const object = { ...(body as KubeObject), metadata: { ...(body as KubeObject).metadata, name: `${(body as KubeObject).metadata?.generateName ?? 'obj'}${++this.resourceVersion}`, resourceVersion: String(this.resourceVersion) } };
      this.created.push(object);
      return sendJson(res, 201, object);
    }
    if (method !== 'GET') return sendStatus(res, 405, 'MethodNotAllowed', `${method} is not served by the double`);
    if (url.pathname === '/.well-known/openid-configuration') {
      return sendJson(res, 200, { issuer: this.issuer, jwks_uri: `${this.url}/openid/v1/jwks`, response_types_supported: ['id_token'], subject_types_supported: ['public'], id_token_signing_alg_values_supported: ['RS256'] });
    }
    if (url.pathname === '/openid/v1/jwks') return sendJson(res, 200, { keys: this.serviceAccountKeys });
    const clusterList = /^(\/api\/v1|\/apis\/[^/]+\/[^/]+)\/([^/]+)$/.exec(url.pathname);
    if (clusterList && clusterList[2] !== 'namespaces') {
      const [, prefix = '', plural = ''] = clusterList;
      const items = [...this.objects.entries()].filter(([k]) => k.startsWith(`${prefix}/namespaces/`) && k.split('/').at(-2) === plural).map(([, v]) => v).filter(fieldSelected(url));
      return sendJson(res, 200, { apiVersion: 'v1', kind: 'List', metadata: { resourceVersion: String(this.resourceVersion) }, items });
    }
    const match = /^(\/api\/v1|\/apis\/[^/]+\/[^/]+)\/namespaces\/([^/]+)\/([^/]+)(?:\/([^/]+))?$/.exec(url.pathname);
    if (!match) return sendStatus(res, 404, 'NotFound', `the server could not find the requested resource (${url.pathname})`);
    const [, prefix = '', namespace = '', plural = '', name] = match;
    if (name) {
      const object = this.objects.get(`${prefix}/namespaces/${namespace}/${plural}/${name}`);
      if (!object) return sendStatus(res, 404, 'NotFound', `${plural} "${name}" not found`);
      return sendJson(res, 200, object);
    }
    const collection = `${prefix}/namespaces/${namespace}/${plural}`;
    const items = [...this.objects.entries()].filter(([k]) => k.startsWith(`${collection}/`)).map(([, v]) => v).filter(fieldSelected(url));
    if (url.searchParams.get('watch') === 'true' || url.searchParams.get('watch') === '1') {
      res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
      res.flushHeaders();
      const since = Number(url.searchParams.get('resourceVersion') ?? 0);
      for (const item of items) {
        if (Number(item.metadata.resourceVersion) > since) res.write(`${JSON.stringify({ type: 'ADDED', object: item })}\n`);
      }
      const watcher = { prefix: collection, namespace, res };
      this.watchers.add(watcher);
      res.on('close', () => this.watchers.delete(watcher));
      return undefined;
    }
    return sendJson(res, 200, { apiVersion: 'v1', kind: 'List', metadata: { resourceVersion: String(this.resourceVersion) }, items });
  }
}

/**
 * `?fieldSelector=spec.nodeName=node-1,metadata.name=x` (equality only, `=` or `==`), as the API
 * server filters lists; a field the object lacks is the empty string there too.
 */
function fieldSelected(url: URL): (object: KubeObject) => boolean {
  const selector = url.searchParams.get('fieldSelector') ?? '';
  const terms = selector === '' ? [] : selector.split(',').map((t) => /^([^=!]+)==?(.*)$/.exec(t)).map((m) => ({ path: m?.[1] ?? '', value: m?.[2] ?? '' }));
  return (object) =>
    terms.every(({ path, value }) => {
      let at: unknown = object;
      for (const part of path.split('.')) at = at && typeof at === 'object' ? (at as Record<string, unknown>)[part] : undefined;
      return (typeof at === 'string' ? at : '') === value;
    });
}

function apiPrefix(apiVersion: string): string {
  return apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
}

function sendJson(res: ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function sendStatus(res: ServerResponse, code: number, reason: string, message: string): void {
  sendJson(res, code, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code });
}
