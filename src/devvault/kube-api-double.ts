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
  /** Undefined: a watch of all namespaces (`/apis/<group>/<version>/<plural>?watch=true`). */
  namespace: string | undefined;
  selected: (object: KubeObject) => boolean;
  res: ServerResponse;
}

/** One change, kept so that a watch resumed from a resourceVersion replays what it missed. */
interface Change {
  prefix: string;
  namespace: string;
  type: string;
  object: KubeObject;
  old?: KubeObject;
}

/**
 * A local Kubernetes API server double speaking the real REST wire format over HTTP: GET of one
 * object, LIST, and WATCH (`?watch=true`, one JSON event per line, kept open) for namespaced
 * resources of core (`/api/v1`) and groups (`/apis/<group>/<version>`), with Status bodies on
 * errors; LISTs honour equality `fieldSelector`s. Any plural is served alike (SecretProviderClasses, pods,
 * ConfigMaps at `/api/v1/namespaces/<ns>/configmaps` and `/api/v1/configmaps`). Tests put objects in and see every request the client made;
 * the bench (`bench/publish.ts`) serves its Kubernetes-mode driver from it.
 */
export class KubeApiDouble {
  private readonly objects = new Map<string, KubeObject>();
  private readonly watchers = new Set<Watcher>();
  private readonly changes: Change[] = [];
  /** Changes not yet sent to open watches (see pauseWatches). */
  private held?: Change[];
  /** Watches from an older resourceVersion get 410 Gone, as after etcd compaction. */
  private compactedAt = 0;
  private server?: Server;
  private resourceVersion = 100;
  /** `METHOD path?query` of every request, in order. */
  readonly requests: string[] = [];
  /** `METHOD path?query` and the body bytes of every answer (not a watch stream) that was sent in full, in order. */
  readonly responses: Array<{ request: string; bytes: number }> = [];
  /** Bodies of the objects clients created with POST (Events). */
  readonly created: object[] = [];
  /** When set, every request answers this HTTP status (an API server outage). */
  failWith?: number;
  /** When set, requests whose path matches answer 403 Forbidden, as RBAC refuses them (e.g. `/configmaps/`). */
  forbid?: RegExp;
  /** When set, LISTs (GETs of a collection, not watches) are not answered until it is cleared (a slow first LIST). */
  stallLists?: boolean;
  private stalledLists: Array<() => void> = [];
  /** When set, writes (POST/PUT/PATCH/DELETE) of `writablePlurals` answer this HTTP status (RBAC missing, etcd trouble). */
  failWritesWith?: number;
  /** When set, those writes are never answered (a hung API server). */
  stallWrites?: boolean;
  /** Service-account token issuer and its public keys, served by the OIDC discovery endpoints. */
  issuer = 'https://kubernetes.default.svc.cluster.local';
  serviceAccountKeys: object[] = [];
  url = '';

  private tmpDir = '';

  async start(): Promise<this> {
    this.tmpDir = await mkdtemp('/dev/shm/podvault-api-double-');
    this.server = createServer((req, res) => {
      res.on('finish', () => {
        const length = res.getHeader('content-length');
        if (length !== undefined) this.responses.push({ request: `${req.method ?? 'GET'} ${req.url ?? '/'}`, bytes: Number(length) });
      });
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
    const old = this.objects.get(key);
    this.objects.set(key, stored);
    this.notify({ prefix: `${prefix}/namespaces/${ns}/${plural}`, namespace: ns, type: existed ? 'MODIFIED' : 'ADDED', object: stored, ...(old ? { old } : {}) });
  }

  /**
   * End every open watch, as an API server restart or a load balancer does; `abort` resets the
   * connections instead of ending the responses. Clients must watch again to see later changes.
   */
  dropWatches(abort = false): void {
    for (const w of this.watchers) {
      if (abort) w.res.socket?.destroy();
      else w.res.end();
    }
    this.watchers.clear();
  }

  /** Answer the LISTs held back by `stallLists`, and serve LISTs again. */
  releaseLists(): void {
    this.stallLists = false;
    for (const answer of this.stalledLists.splice(0)) answer();
  }

  /** Hold back watch events (a slow watch: the kubelet may publish before the event arrives). */
  pauseWatches(): void {
    this.held ??= [];
  }

  resumeWatches(): void {
    const held = this.held ?? [];
    this.held = undefined;
    for (const change of held) for (const w of this.watchers) this.send(w, change);
  }

  /** Forget the changes so far: a watch resumed from before now answers 410 Gone (too old). */
  compact(): void {
    this.compactedAt = this.resourceVersion;
    this.changes.length = 0;
  }

  /** Paths of the open watches (`/apis/<group>/<version>/<plural>` for all namespaces). */
  get openWatches(): string[] {
    return [...this.watchers].map((w) => w.prefix);
  }

  delete(plural: string, apiVersion: string, namespace: string, name: string): void {
    const prefix = apiPrefix(apiVersion);
    const key = `${prefix}/namespaces/${namespace}/${plural}/${name}`;
    const existing = this.objects.get(key);
    if (!existing) return;
    this.objects.delete(key);
    // A deletion is a change too: it has a resourceVersion of its own, as in the API server.
    const deleted = { ...existing, metadata: { ...existing.metadata, resourceVersion: String(++this.resourceVersion) } };
    this.notify({ prefix: `${prefix}/namespaces/${namespace}/${plural}`, namespace, type: 'DELETED', object: deleted });
  }

  private notify(change: Change): void {
    this.changes.push(change);
    if (this.held) this.held.push(change);
    else for (const w of this.watchers) this.send(w, change);
  }

  /**
   * A change as a watcher sees it. A field-selected watch sees an object that starts matching as
   * ADDED and one that stops matching as DELETED (a pod bound to the node, or moved off it).
   */
  private send(w: Watcher, change: Change): void {
    const { prefix, namespace, object, old } = change;
    if (w.namespace === undefined ? prefix.replace(/\/namespaces\/[^/]+\//, '/') !== w.prefix : prefix !== w.prefix || namespace !== w.namespace) return;
    const now = change.type !== 'DELETED' && w.selected(object);
    const before = change.type === 'DELETED' ? w.selected(object) : old !== undefined && w.selected(old);
    const type = now ? (before ? change.type : 'ADDED') : before ? 'DELETED' : undefined;
    if (type) w.res.write(`${JSON.stringify({ type, object })}\n`);
  }

  private startWatch(res: ServerResponse, url: URL, prefix: string, namespace: string | undefined, current: KubeObject[]): void {
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    res.flushHeaders();
    const since = Number(url.searchParams.get('resourceVersion') ?? 0);
    const watcher: Watcher = { prefix, namespace, selected: fieldSelected(url), res };
    if (since !== 0 && since < this.compactedAt) {
      // What the API server sends for a resourceVersion it no longer has; then it ends the watch.
      res.end(`${JSON.stringify({ type: 'ERROR', object: { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: `too old resource version: ${since}`, reason: 'Expired', code: 410 } })}\n`);
      return;
    }
    // From resourceVersion 0: every current object as ADDED; from a later one: the changes since.
    if (since === 0) for (const item of current) res.write(`${JSON.stringify({ type: 'ADDED', object: item })}\n`);
    else for (const change of this.changes) if (Number(change.object.metadata.resourceVersion) > since) this.send(watcher, change);
    this.watchers.add(watcher);
    res.on('close', () => this.watchers.delete(watcher));
  }

  /**
   * POST (create: 409 if the name exists), PUT (replace: 404 if missing, 409 on a stale
   * resourceVersion), PATCH (JSON merge patch) and DELETE of a writable resource, as the API
   * server answers them; watchers see the change.
   */
  private write(method: string, pathname: string, res: ServerResponse, body: unknown): void {
    if (this.stallWrites) return undefined;
    if (this.failWritesWith) return sendStatus(res, this.failWritesWith, this.failWritesWith === 403 ? 'Forbidden' : 'InternalError', `${method} refused by the double on purpose`);
    const [, prefix = '', namespace = '', plural = '', pathName, subresource] = /^(\/apis\/[^/]+\/[^/]+)\/namespaces\/([^/]+)\/([^/]+)(?:\/([^/]+)(?:\/(status))?)?$/.exec(pathname) ?? [];
    const sent = body as KubeObject | undefined;
    const name = pathName ?? sent?.metadata?.name;
    if (!name) return sendStatus(res, 422, 'Invalid', 'metadata.name: Required value');
    const key = `${prefix}/namespaces/${namespace}/${plural}/${name}`;
    const existing = this.objects.get(key);
    const store = (object: KubeObject, code: number): void => {
      // With a status subresource, writes of the object keep its status and writes of /status keep the rest.
      const kept = statusPlurals.includes(plural) ? (subresource ? { ...existing, status: object.status } : { ...object, status: existing?.status }) : object;
      if (kept.status === undefined) delete kept.status;
      this.put(plural, { ...kept, metadata: { ...(subresource && existing ? existing.metadata : object.metadata), name, namespace } } as KubeObject);
      sendJson(res, code, this.objects.get(key));
    };
    if (subresource && method !== 'PUT' && method !== 'PATCH') return sendStatus(res, 405, 'MethodNotAllowed', `${method} of ${subresource} is not served by the double`);
    if (method === 'POST') {
      if (existing) return sendStatus(res, 409, 'AlreadyExists', `${plural} "${name}" already exists`);
      return store(sent as KubeObject, 201);
    }
    if (!existing) return sendStatus(res, 404, 'NotFound', `${plural} "${name}" not found`);
    if (method === 'PUT') {
      const rv = sent?.metadata?.resourceVersion;
      if (rv !== undefined && rv !== existing.metadata.resourceVersion) return sendStatus(res, 409, 'Conflict', `the object has been modified; please apply your changes to the latest version and try again`);
      return store(sent as KubeObject, 200);
    }
    if (method === 'PATCH') return store(mergePatch(existing, body) as KubeObject, 200);
    if (method === 'DELETE') {
      this.delete(plural, existing.apiVersion, namespace, name);
      return sendJson(res, 200, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success' });
    }
    return sendStatus(res, 405, 'MethodNotAllowed', `${method} is not served by the double`);
  }

  /** A stored object, or undefined (tests read what the driver wrote). */
  get(plural: string, apiVersion: string, namespace: string, name: string): KubeObject | undefined {
    return this.objects.get(`${apiPrefix(apiVersion)}/namespaces/${namespace}/${plural}/${name}`);
  }

  private handle(method: string, rawUrl: string, authorization: string | undefined, res: ServerResponse, body?: unknown): void {
    this.requests.push(`${method} ${rawUrl}`);
    if (this.failWith) return sendStatus(res, this.failWith, 'InternalError', 'the API server double is failing on purpose');
    if (authorization !== 'Bearer test-token') return sendStatus(res, 401, 'Unauthorized', 'Unauthorized');
    const url = new URL(rawUrl, 'http://double');
    if (this.forbid?.test(url.pathname)) return sendStatus(res, 403, 'Forbidden', `${url.pathname} is forbidden: the double refuses it on purpose`);
    if (method !== 'GET' && isWritable(url.pathname)) return this.write(method, url.pathname, res, body);
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
      if (isWatch(url)) return this.startWatch(res, url, `${prefix}/${plural}`, undefined, items);
      if (this.stallLists) return void this.stalledLists.push(() => sendJson(res, 200, this.page(url, items)));
      return sendJson(res, 200, this.page(url, items));
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
    if (isWatch(url)) return this.startWatch(res, url, collection, namespace, items);
    return sendJson(res, 200, this.page(url, items));
  }

  /** A LIST answer, paged as the API server pages (`limit`, `continue`: here the offset of the next page). */
  private page(url: URL, items: KubeObject[]): object {
    const limit = Number(url.searchParams.get('limit') ?? 0);
    const from = Number(url.searchParams.get('continue') ?? 0);
    const page = limit > 0 ? items.slice(from, from + limit) : items;
    const next = limit > 0 && from + limit < items.length ? { continue: String(from + limit) } : {};
    return { apiVersion: 'v1', kind: 'List', metadata: { resourceVersion: String(this.resourceVersion), ...next }, items: page };
  }
}

/** Resources the double stores writes of (create, replace, merge patch, delete by name); others' POSTs are Events. */
const writablePlurals = ['secretproviderclasspodstatuses', 'leases', 'vaultobjectversions'];

/** Writable resources with a status subresource (`PUT .../<name>/status`), as their CRD declares. */
const statusPlurals = ['vaultobjectversions'];

function isWritable(pathname: string): boolean {
  return writablePlurals.some((plural) => new RegExp(`^/apis/[^/]+/[^/]+/namespaces/[^/]+/${plural}(?:/[^/]+${statusPlurals.includes(plural) ? '(?:/status)?' : ''})?$`).test(pathname));
}

function mergePatch(target: unknown, patch: unknown): unknown {
  if (!patch || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> = target && typeof target === 'object' && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
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

function isWatch(url: URL): boolean {
  return url.searchParams.get('watch') === 'true' || url.searchParams.get('watch') === '1';
}

function apiPrefix(apiVersion: string): string {
  return apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
}

function sendJson(res: ServerResponse, code: number, body: unknown): void {
  const text = Buffer.from(JSON.stringify(body));
  // setHeader, not writeHead's headers: the double reads content-length back to record the answer's size.
  res.statusCode = code;
  res.setHeader('content-type', 'application/json');
  res.setHeader('content-length', text.length);
  // Written with backpressure, as the API server streams a LIST: a client that stops reading (and
  // drops the connection) stops the answer, which is then never recorded as finished.
  let at = 0;
  const next = (): void => {
    while (at < text.length) {
      const chunk = text.subarray(at, at + 256 * 1024);
      at += chunk.length;
      if (!res.write(chunk)) {
        res.once('drain', next);
        return;
      }
    }
    res.end();
  };
  next();
}

function sendStatus(res: ServerResponse, code: number, reason: string, message: string): void {
  sendJson(res, code, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code });
}
