import { status } from '@grpc/grpc-js';
import { CsiError } from '../../driver/csi-error.js';

/**
 * Turn an Azure SDK failure into the CsiError the kubelet shows the user. The message names the
 * vault, the object and the HTTP status or error code, never a value: SDK messages are not copied
 * wholesale because token errors can quote request details.
 *   403 / 401 (token refused)  -> PERMISSION_DENIED
 *   404                        -> NOT_FOUND
 *   429, 5xx, network, timeout -> UNAVAILABLE (the kubelet retries with backoff)
 *   credential failures        -> PERMISSION_DENIED when Entra refused, else UNAVAILABLE
 */
export function keyVaultError(err: unknown, vaultUrl: string, what: string): CsiError {
  if (err instanceof CsiError) return err;
  const e = (err ?? {}) as { name?: unknown; statusCode?: unknown; code?: unknown; message?: unknown };
  const name = typeof e.name === 'string' ? e.name : '';
  const statusCode = typeof e.statusCode === 'number' ? e.statusCode : undefined;
  const code = typeof e.code === 'string' ? e.code : undefined;
  const at = `vault ${vaultUrl}: ${what}`;

  if (name === 'AbortError') return new CsiError(status.DEADLINE_EXCEEDED, `${at}: request cancelled (deadline passed)`, { cause: err });
  if (name === 'AuthenticationError' || name === 'CredentialUnavailableError' || name === 'AuthenticationRequiredError') {
    const aadCode = aadErrorCode(err);
    const refused = statusCode !== undefined && statusCode >= 400 && statusCode < 500;
    return new CsiError(
      refused ? status.PERMISSION_DENIED : status.UNAVAILABLE,
      `${at}: could not get a token from Entra ID${statusCode ? ` (HTTP ${statusCode})` : ''}${aadCode ? `: ${aadCode}` : ''}`,
      { cause: err },
    );
  }
  if (statusCode !== undefined) {
    const detail = `${at}: HTTP ${statusCode}${code ? ` ${code}` : ''}`;
    if (statusCode === 401 || statusCode === 403) return new CsiError(status.PERMISSION_DENIED, `${detail} (the identity may not read it)`, { cause: err });
    if (statusCode === 404) return new CsiError(status.NOT_FOUND, `${detail} (no such object or version)`, { cause: err });
    if (statusCode === 429 || statusCode >= 500) return new CsiError(status.UNAVAILABLE, `${detail} (Key Vault is throttling or unavailable; will retry)`, { cause: err });
    return new CsiError(status.INTERNAL, detail, { cause: err });
  }
  return new CsiError(status.UNAVAILABLE, `${at}: cannot reach Key Vault${code ? ` (${code})` : ''}`, { cause: err });
}

/** The AADSTS code of an Entra error, which names the problem without quoting anything secret. */
function aadErrorCode(err: unknown): string | undefined {
  const response = (err as { errorResponse?: { error?: unknown; errorDescription?: unknown } }).errorResponse;
  const description = typeof response?.errorDescription === 'string' ? response.errorDescription : '';
  const aadsts = /AADSTS\d+/.exec(description)?.[0];
  const error = typeof response?.error === 'string' ? response.error : undefined;
  return [error, aadsts].filter(Boolean).join(' ') || undefined;
}
