import { createPublicKey, generateKeyPairSync, randomUUID, timingSafeEqual } from 'node:crypto';
import jwt from 'jsonwebtoken';
import type { SeedClient } from './seed.js';
import type { VaultStore } from './store.js';

export const VAULT_RESOURCE = 'https://vault.azure.net';
const TOKEN_LIFETIME_S = 3600;
/** Entra ID tolerates some clock skew on assertions; MSAL stamps `nbf` a second after `iat`. */
const CLOCK_SKEW_S = 60;

export interface TokenError {
  status: number;
  body: { error: string; error_description: string; error_codes?: number[] };
}

/** dev-vault's Entra ID: issues signed access tokens for known clients and checks them again. */
export class DevEntra {
  private readonly keys = generateKeyPairSync('rsa', { modulusLength: 2048 });
  private readonly kid = randomUUID();

  constructor(
    private readonly store: VaultStore,
    readonly tenantId: string,
    private readonly issuerBase: () => string,
    /** Further tenants this Entra ID issues tokens in (one authority, several tenants). */
    private readonly otherTenants: readonly string[] = [],
    /** The Key Vault resource its tokens are for (a custom cloud's, e.g. Azure Stack Hub's). */
    readonly vaultResource: string = VAULT_RESOURCE,
  ) {}

  issuer(tenant = this.tenantId): string {
    return `${this.issuerBase()}/${tenant}/v2.0`;
  }

  /** The OAuth2 client-credentials grant with a client secret. */
  issueToken(tenant: string, form: URLSearchParams, tokenEndpoint: string): { token: string; expiresIn: number } | TokenError {
    if (tenant !== this.tenantId && !this.otherTenants.includes(tenant)) {
      return tokenError(400, 'invalid_request', `AADSTS90002: Tenant '${tenant}' not found.`);
    }
    if (form.get('grant_type') !== 'client_credentials') {
      return tokenError(400, 'unsupported_grant_type', 'AADSTS70003: The grant type is not supported.');
    }
    const clientId = form.get('client_id') ?? '';
    const client = this.store.clients.get(clientId);
    if (!client) {
      return tokenError(400, 'unauthorized_client', `AADSTS700016: Application with identifier '${clientId}' was not found in the directory.`);
    }
    const assertion = form.get('client_assertion');
    if (assertion !== null) {
      const problem = this.assertionProblem(client, assertion, tokenEndpoint);
      if (problem) return problem;
    } else {
      const presented = Buffer.from(form.get('client_secret') ?? '');
      const expected = Buffer.from(client.clientSecret ?? '');
      if (expected.length === 0 || presented.length !== expected.length || !timingSafeEqual(presented, expected)) {
        return tokenError(401, 'invalid_client', 'AADSTS7000215: Invalid client secret provided.');
      }
    }
    const scope = form.get('scope') ?? '';
    const audience = scope.replace(/\/\.default$/, '');
    if (audience !== this.vaultResource) {
      return tokenError(400, 'invalid_scope', `AADSTS70011: The provided value for scope ${scope} is not valid.`);
    }
    return this.accessToken(clientId, tenant);
  }

  /** A signed vault access token for `clientId` in `tenant`. */
  accessToken(clientId: string, tenant = this.tenantId): { token: string; expiresIn: number } {
    const token = jwt.sign({ appid: clientId, tid: tenant, sub: clientId, oid: clientId }, this.keys.privateKey, {
      algorithm: 'RS256',
      keyid: this.kid,
      audience: this.vaultResource,
      issuer: this.issuer(tenant),
      expiresIn: TOKEN_LIFETIME_S,
    });
    return { token, expiresIn: TOKEN_LIFETIME_S };
  }

  /**
   * Check a client assertion: signed by the client's certificate key (service principal with
   * certificate; audience the token endpoint) or by its federated issuer (workload identity;
   * audience api://AzureADTokenExchange, issuer and subject as registered).
   */
  private assertionProblem(client: SeedClient, assertion: string, tokenEndpoint: string): TokenError | undefined {
    try {
      if (client.certificatePem) {
        const claims = jwt.verify(assertion, createPublicKey(client.certificatePem), { algorithms: ['PS256', 'RS256'], audience: tokenEndpoint, issuer: client.clientId, subject: client.clientId, clockTolerance: CLOCK_SKEW_S });
        return typeof claims === 'object' ? undefined : tokenError(401, 'invalid_client', 'AADSTS700027: Client assertion failed signature validation.');
      }
      if (client.federated) {
        jwt.verify(assertion, createPublicKey(client.federated.publicKeyPem), {
          algorithms: ['RS256', 'ES256'],
          audience: 'api://AzureADTokenExchange',
          issuer: client.federated.issuer,
          subject: client.federated.subject,
          clockTolerance: CLOCK_SKEW_S,
        });
        return undefined;
      }
    } catch (err) {
      const expired = err instanceof Error && err.name === 'TokenExpiredError';
      return tokenError(401, 'invalid_client', expired ? 'AADSTS700024: Client assertion is not within its valid time range.' : 'AADSTS700027: Client assertion failed signature validation.');
    }
    return tokenError(401, 'invalid_client', 'AADSTS700027: The client has no certificate or federated credential registered.');
  }

  /** The client id of a valid vault access token issued in `tenant`, or undefined. */
  verifyAccessToken(token: string, tenant = this.tenantId): string | undefined {
    try {
      const claims = jwt.verify(token, this.keys.publicKey, { algorithms: ['RS256'], audience: this.vaultResource, issuer: this.issuer(tenant) });
      return typeof claims === 'object' && typeof claims.appid === 'string' && claims.tid === tenant ? claims.appid : undefined;
    } catch {
      return undefined;
    }
  }
}

function tokenError(status: number, error: string, description: string): TokenError {
  const code = Number(/AADSTS(\d+)/.exec(description)?.[1] ?? 0);
  return { status, body: { error, error_description: description, error_codes: [code] } };
}
