import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ObjectKind, StoredVersion, VaultStore } from './store.js';
import type { KeyAction } from './seed.js';
import { generateKeyVersion, KeyOperationError, runKeyOperation, specOf } from './key-crypto.js';
import type { KeyOperation } from './key-crypto.js';
import { readBody, sendJson } from './http-io.js';
import type { Route } from './http-io.js';

/** Key operation bodies are a few hundred bytes; anything past this is refused. */
const MAX_KEY_OPERATION_BODY = 64 * 1024;

/** What the key routes need from the server: its auth, its error answers and its key body. */
export interface KeyRouteContext {
  store: VaultStore;
  authorize(req: IncomingMessage, res: ServerResponse, kind: string): string | undefined;
  forbidden(res: ServerResponse, clientId: string, kind: ObjectKind, action: string, name: string): void;
  objectNotFound(res: ServerResponse, kind: ObjectKind, name: string): void;
  keyBody(name: string, v: StoredVersion): Record<string, unknown>;
  baseUrl(): string;
}

const ACTION_OF: Record<KeyOperation, { action: KeyAction; rbac: string; label: string }> = {
  wrapkey: { action: 'wrapKey', rbac: 'wrap/action', label: 'wrapKey' },
  unwrapkey: { action: 'unwrapKey', rbac: 'unwrap/action', label: 'unwrapKey' },
  encrypt: { action: 'encrypt', rbac: 'encrypt/action', label: 'encrypt' },
  decrypt: { action: 'decrypt', rbac: 'decrypt/action', label: 'decrypt' },
};

/**
 * Key Vault's key operations on dev-vault's RSA keys: `POST /keys/{name}/{version}/{op}` with
 * `{alg, value}` (base64url) answered `{kid, value}` (an empty or absent version means the current
 * one), and `POST /keys/{name}/rotate`, which adds a version of the same type and size. Each is
 * checked against the caller's crypto roles (`mayUseKey`), with Key Vault's 403 body on refusal.
 */
export function keyRoutes(ctx: KeyRouteContext): Array<[RegExp, string, Route]> {
  return [
    [/^\/keys\/([^/]+)\/rotate$/, 'POST', (req, res, url) => {
      const clientId = ctx.authorize(req, res, 'key-rotate');
      if (!clientId) return;
      const name = decodeURIComponent(url.pathname.split('/')[2] ?? '');
      if (!ctx.store.mayUseKey(clientId, name, 'rotate')) return ctx.forbidden(res, clientId, 'keys', 'rotate/action', name);
      const current = ctx.store.get('keys', name);
      if (!current?.privateKey) return ctx.objectNotFound(res, 'keys', name);
      const next = generateKeyVersion(specOf(current.privateKey));
      const version = ctx.store.putKey(name, next.jwk, next.privateKey);
      const entry = ctx.store.get('keys', name, version);
      if (entry) sendJson(res, 200, ctx.keyBody(name, entry));
    }],
    [/^\/keys\/([^/]+)(?:\/([^/]*))?\/(wrapkey|unwrapkey|encrypt|decrypt)$/, 'POST', async (req, res, url) => {
      const [, , rawName = '', second = '', third] = url.pathname.split('/');
      const op = (third ?? second) as KeyOperation;
      const rawVersion = third === undefined ? '' : second;
      const { action, rbac, label } = ACTION_OF[op];
      const clientId = ctx.authorize(req, res, `key-${op}`);
      if (!clientId) return;
      const name = decodeURIComponent(rawName);
      if (!ctx.store.mayUseKey(clientId, name, action)) return ctx.forbidden(res, clientId, 'keys', rbac, name);
      const entry = ctx.store.get('keys', name, rawVersion === '' ? undefined : decodeURIComponent(rawVersion));
      if (!entry?.privateKey) return ctx.objectNotFound(res, 'keys', name);
      const expired = entry.expires !== undefined && entry.expires * 1000 < Date.now();
      if (!entry.enabled || expired) {
        const state = entry.enabled ? 'Expired' : 'Disabled';
        return sendJson(res, 403, { error: { code: 'Forbidden', message: `Operation ${label} is not allowed on ${entry.enabled ? 'an expired' : 'a disabled'} key.`, innererror: { code: `Key${state}` } } });
      }
      let body: { alg?: unknown; value?: unknown };
      try {
        body = JSON.parse(await readBody(req, MAX_KEY_OPERATION_BODY)) as { alg?: unknown; value?: unknown };
      } catch {
        return sendJson(res, 400, { error: { code: 'BadParameter', message: 'The request body is not valid JSON.' } });
      }
      if (typeof body.alg !== 'string' || typeof body.value !== 'string' || !/^[A-Za-z0-9_-]*$/.test(body.value)) {
        return sendJson(res, 400, { error: { code: 'BadParameter', message: 'Property alg and a base64url property value are required.' } });
      }
      try {
        const out = runKeyOperation(op, body.alg, entry.privateKey, Buffer.from(body.value, 'base64url'));
        sendJson(res, 200, { kid: `${ctx.baseUrl()}/keys/${name}/${entry.version}`, value: out.toString('base64url') });
      } catch (err) {
        if (!(err instanceof KeyOperationError)) throw err;
        sendJson(res, err.status, { error: { code: err.code, message: err.message } });
      }
    }],
  ];
}
