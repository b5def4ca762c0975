import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { RequestOptions } from 'node:https';
import { ApiException } from '@kubernetes/client-node';
import type { KubeConfig } from '@kubernetes/client-node';

/**
 * Most bytes of one LIST response body the driver reads. A page's `limit` counts objects, not
 * bytes, and a tenant may fill their namespace with objects of up to ~1.5 MiB each (etcd's request
 * limit): 500 of them are 750 MiB in one body, past the driver's 256 MiB memory limit, on every
 * node at once and again at each restart. A page over this is asked again with a smaller limit.
 */
export const MAX_LIST_PAGE_BYTES = 4 * 1024 * 1024;

/** Objects asked for per page while pages fit. */
export const LIST_PAGE_SIZE = 500;

export interface ListPage {
  items: unknown[];
  resourceVersion?: string;
  continueToken?: string;
}

class PageTooLarge extends Error {}

/**
 * One LIST page of `path` (`limit`, `continue`, `fieldSelector`), its body read with at most
 * `maxBytes`: a bigger page is dropped as it streams in and asked again with a quarter of the
 * limit, down to one object (which always fits: the API server stores none that large). Answers
 * that are not 200 throw client-node's ApiException with their HTTP code.
 */
export async function listPageBounded(kubeConfig: KubeConfig, path: string, query: { limit: number; continueToken?: string | undefined; fieldSelector?: string | undefined }, maxBytes = MAX_LIST_PAGE_BYTES): Promise<ListPage & { limit: number }> {
  for (let limit = Math.max(1, query.limit); ; limit = Math.max(1, Math.floor(limit / 4))) {
    try {
      return { ...(await getPage(kubeConfig, path, { ...query, limit }, maxBytes)), limit };
    } catch (err) {
      if (!(err instanceof PageTooLarge) || limit === 1) throw err;
    }
  }
}

/**
 * Every item of a LIST, page by page, each page through `listPageBounded` and handed to `visit`
 * before the next is read: the caller keeps only what it needs, so the whole collection is never
 * in memory at once. After a page that fits, the limit grows back towards `LIST_PAGE_SIZE`.
 */
export async function forEachListed(kubeConfig: KubeConfig, path: string, fieldSelector: string | undefined, visit: (items: unknown[]) => void): Promise<void> {
  let continueToken: string | undefined;
  let limit = LIST_PAGE_SIZE;
  do {
    const page = await listPageBounded(kubeConfig, path, { limit, continueToken, fieldSelector });
    visit(page.items);
    continueToken = page.continueToken;
    limit = Math.min(LIST_PAGE_SIZE, page.limit * 2);
  } while (continueToken);
}

async function getPage(kubeConfig: KubeConfig, path: string, query: { limit: number; continueToken?: string | undefined; fieldSelector?: string | undefined }, maxBytes: number): Promise<ListPage> {
  const server = kubeConfig.getCurrentCluster()?.server;
  if (!server) throw new Error('no current cluster in the kubeconfig');
  const url = new URL(server.replace(/\/+$/, '') + path);
  if (query.continueToken) url.searchParams.set('continue', query.continueToken);
  if (query.fieldSelector) url.searchParams.set('fieldSelector', query.fieldSelector);
  url.searchParams.set('limit', String(query.limit));
  const options: RequestOptions = { method: 'GET', headers: { accept: 'application/json' } };
  await kubeConfig.applyToHTTPSOptions(options);
  const body = await new Promise<{ code: number; text: string }>((resolve, reject) => {
    const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, options, (res) => {
      const chunks: Buffer[] = [];
      let bytes = 0;
      res.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        if (bytes > maxBytes) {
          req.destroy(new PageTooLarge(`LIST page over ${maxBytes} bytes`));
          return;
        }
        chunks.push(chunk);
      });
      res.on('end', () => (bytes > maxBytes ? reject(new PageTooLarge(`LIST page over ${maxBytes} bytes`)) : resolve({ code: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') })));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
  let parsed: { items?: unknown; metadata?: { resourceVersion?: unknown; continue?: unknown }; message?: unknown };
  try {
    parsed = JSON.parse(body.text) as typeof parsed;
  } catch {
    parsed = {};
  }
  if (body.code !== 200) throw new ApiException(body.code, `LIST ${path}: HTTP ${body.code}`, typeof parsed.message === 'string' ? parsed.message : '', {});
  if (!Array.isArray(parsed.items)) throw new ApiException(body.code, `LIST ${path}: the answer is not a list`, '', {});
  const { resourceVersion, continue: next } = parsed.metadata ?? {};
  return { items: parsed.items as unknown[], ...(typeof resourceVersion === 'string' && resourceVersion ? { resourceVersion } : {}), ...(typeof next === 'string' && next ? { continueToken: next } : {}) };
}
