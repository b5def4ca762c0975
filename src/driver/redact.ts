/**
 * The one place where a CSI request is turned into something loggable. `secrets` (the
 * nodePublishSecretRef contents) and the service-account tokens the kubelet puts into the volume
 * context are dropped here, by construction, whatever the caller later does with the result.
 */
export const SERVICE_ACCOUNT_TOKENS_KEY = 'csi.storage.k8s.io/serviceAccount.tokens';

const DROPPED_CONTEXT_KEYS = new Set([SERVICE_ACCOUNT_TOKENS_KEY]);

export function loggableRequest(request: unknown): Record<string, unknown> {
  if (request === null || typeof request !== 'object') return {};
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(request)) {
    if (key === 'secrets') {
      const names = value && typeof value === 'object' ? Object.keys(value).sort() : [];
      out.secretKeys = names;
    } else if (key === 'volumeContext' && value && typeof value === 'object') {
      const ctx: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        ctx[k] = DROPPED_CONTEXT_KEYS.has(k) ? '[redacted]' : v;
      }
      out.volumeContext = ctx;
    } else {
      out[key] = value;
    }
  }
  return out;
}
