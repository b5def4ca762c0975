import { entraErrorCodes } from '../../errors/describe-cause.js';
import { PodvaultError } from '../../errors/podvault-error.js';

/**
 * Turn an Azure SDK failure into the PodvaultError a user reads. The message names the
 * vault, the object and the HTTP status or error code, never a value: SDK messages are not copied
 * wholesale because token errors can quote request details.
 *   403 / 401 (token refused)  -> PERMISSION_DENIED
 *   404                        -> NOT_FOUND
 *   429, 5xx, network, timeout -> UNAVAILABLE (the kubelet retries with backoff)
 *   credential failures        -> PERMISSION_DENIED when Entra refused, else UNAVAILABLE
 *   a challenge of another tenant -> PERMISSION_DENIED naming tenantId
 *   403 on a disabled/expired object -> FAILED_PRECONDITION
 */
export function keyVaultError(err: unknown, vaultUrl: string, what: string): PodvaultError {
  if (err instanceof PodvaultError) return err;
  const e = (err ?? {}) as { name?: unknown; statusCode?: unknown; code?: unknown; message?: unknown };
  const name = typeof e.name === 'string' ? e.name : '';
  const statusCode = typeof e.statusCode === 'number' ? e.statusCode : undefined;
  // Codes come from the answer's body: keep only code-shaped text (a hostile origin writes it).
  const code = typeof e.code === 'string' && /^[A-Za-z0-9_.-]{1,64}$/.test(e.code) ? e.code : undefined;
  const at = `vault ${vaultUrl}: ${what}`;

  if (name === 'RequestTimeoutError') return new PodvaultError('unavailable', `${at}: Key Vault did not answer in time (${e.message as string}); will retry`, { cause: err });
  if (name === 'AbortError' || name === 'TimeoutError') return new PodvaultError('deadline-exceeded', `${at}: the publish deadline passed before Key Vault answered`, { cause: err });
  // The vault's challenge names another tenant than the credential's (an object of another
  // tenant's vault without that tenant's tenantId): the SDK refuses before any token is asked for.
  // Retrying cannot help, so it is a refusal naming the parameter; the tenant is the origin's text.
  const otherTenant = name === 'CredentialUnavailableError' && typeof e.message === 'string' ? /^The current credential is not configured to acquire tokens for tenant (\S*)\./.exec(e.message)?.[1] : undefined;
  if (otherTenant !== undefined) {
    const shown = /^[-A-Za-z0-9.]{1,64}$/.test(otherTenant) ? ` ${otherTenant}` : '';
    return new PodvaultError('permission-denied', `${at}: the vault's authentication challenge names tenant${shown}, not the tenant of the object's identity; set tenantId (the object's own, or the class's) to the vault's tenant`, { cause: err });
  }
  if (name === 'AuthenticationError' || name === 'CredentialUnavailableError' || name === 'AuthenticationRequiredError') {
    const entra = entraErrorCodes(err);
    const refused = (statusCode !== undefined && statusCode >= 400 && statusCode < 500) || (entra.error !== undefined && ENTRA_REFUSALS.has(entra.error));
    const codes = [entra.error, entra.aadsts].filter(Boolean).join(' ');
    return new PodvaultError(
      refused ? 'permission-denied' : 'unavailable',
      `${at}: could not get a token from Entra ID${statusCode ? ` (HTTP ${statusCode})` : ''}${codes ? `: ${codes}` : ''}`,
      { cause: err },
    );
  }
  // Key Vault answers a disabled or expired object with 403 and a message such as "Operation get
  // is not allowed on a disabled secret." (the innererror code is not kept by the SDK's RestError).
  const state = statusCode === 403 && typeof e.message === 'string' ? /not allowed on an? (disabled|expired)/i.exec(e.message)?.[1]?.toLowerCase() : undefined;
  if (state) {
    return new PodvaultError('failed-precondition', `${at}: HTTP 403: the object is ${state} in Key Vault; ${state === 'disabled' ? 'enable it' : 'renew it'} or pin a valid objectVersion`, { cause: err });
  }
  if (statusCode !== undefined) {
    const detail = `${at}: HTTP ${statusCode}${code ? ` ${code}` : ''}`;
    if (statusCode === 401 || statusCode === 403) return new PodvaultError('permission-denied', `${detail} (the identity may not read it)`, { cause: err });
    if (statusCode === 404) return new PodvaultError('not-found', `${detail} (no such object or version)`, { cause: err });
    if (statusCode === 429 || statusCode >= 500) return new PodvaultError('unavailable', `${detail} (Key Vault is throttling or unavailable; will retry)`, { cause: err });
    return new PodvaultError('internal', detail, { cause: err });
  }
  return new PodvaultError('unavailable', `${at}: cannot reach Key Vault${code ? ` (${code})` : ''}`, { cause: err });
}

/** OAuth2 error codes meaning Entra ID answered and said no (as opposed to being unreachable). */
const ENTRA_REFUSALS = new Set(['invalid_client', 'unauthorized_client', 'invalid_request', 'invalid_scope', 'invalid_grant', 'access_denied']);
