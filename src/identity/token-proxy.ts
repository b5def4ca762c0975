import { readFile } from 'node:fs/promises';
import { Agent } from 'node:https';
import { createDefaultHttpClient, createPipelineRequest } from '@azure/core-rest-pipeline';
import type { HttpClient, PipelineRequest, PipelineResponse } from '@azure/core-rest-pipeline';
import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/identity';
import { entraErrorCodes } from '../errors/describe-cause.js';
import { PodvaultError } from '../errors/podvault-error.js';
import { tokenProxyUrlProblem } from './token-proxy-config.js';
import type { TokenProxyConfig } from './token-proxy-config.js';

/**
 * The HTTP client of identity-binding credentials: every request the credential makes (the
 * authority's metadata, the token request) goes to the proxy instead of Entra ID, its path
 * appended to the proxy's path and its query kept, over TLS verified against the proxy's CA with
 * the configured server name. Nothing the credential sends can reach any other host, whatever
 * endpoints a metadata document names.
 */
export class TokenProxyClient implements HttpClient {
  private readonly base: URL;
  private readonly inner = createDefaultHttpClient();
  private agent?: Agent;
  private agentCa?: Buffer;

  constructor(
    readonly config: TokenProxyConfig,
    /** CA bundle to trust when the proxy config names none (the driver's --ca-file), else the system roots. */
    private readonly fallbackCaPem?: string,
  ) {
    const problem = tokenProxyUrlProblem(config.url);
    if (problem) throw new Error(`token proxy URL ${problem}`);
    if (config.caFile && config.caData) throw new Error('token proxy: give a CA file or CA data, not both');
    this.base = new URL(config.url);
  }

  /** Loggable name of the proxy (its URL holds no secret). */
  get description(): string {
    return this.base.href;
  }

  async sendRequest(request: PipelineRequest): Promise<PipelineResponse> {
    const original = new URL(request.url);
    const target = new URL(this.base.origin);
    const prefix = this.base.pathname.endsWith('/') ? this.base.pathname : `${this.base.pathname}/`;
    target.pathname = `${prefix}${original.pathname.replace(/^\/+/, '')}`;
    target.search = original.search;
    const forwarded = createPipelineRequest({
      url: target.href,
      method: request.method,
      headers: request.headers,
      ...(request.body !== undefined ? { body: request.body } : {}),
      ...(request.abortSignal ? { abortSignal: request.abortSignal } : {}),
      timeout: request.timeout,
      requestId: request.requestId,
    });
    // createPipelineRequest does not take an agent: set it on the request, where the client reads it.
    forwarded.agent = await this.tlsAgent();
    return this.inner.sendRequest(forwarded);
  }

  /**
   * One keep-alive agent per CA content. A CA file is read on each token request (they are rare:
   * tokens are cached per credential) and a new agent made when its bytes change; an empty file
   * (mid-rotation) keeps the agent of the last good one.
   */
  private async tlsAgent(): Promise<Agent> {
    let ca: Buffer | undefined;
    if (this.config.caFile) {
      const read = await readFile(this.config.caFile).catch((err: unknown) => {
        throw new PodvaultError('unavailable', `token proxy ${this.description}: cannot read its CA file ${this.config.caFile}`, { cause: err });
      });
      if (read.length > MAX_CA_BYTES) throw new PodvaultError('unavailable', `token proxy ${this.description}: its CA file is over ${MAX_CA_BYTES} bytes`);
      if (read.length === 0) {
        if (this.agent) return this.agent;
        throw new PodvaultError('unavailable', `token proxy ${this.description}: its CA file ${this.config.caFile} is empty`);
      }
      ca = read;
    } else if (this.config.caData) {
      ca = Buffer.from(this.config.caData);
    } else if (this.fallbackCaPem) {
      ca = Buffer.from(this.fallbackCaPem);
    }
    if (this.agent && (ca === undefined ? this.agentCa === undefined : this.agentCa !== undefined && ca.equals(this.agentCa))) return this.agent;
    this.agent?.destroy();
    this.agent = new Agent({ keepAlive: true, ...(ca ? { ca } : {}), ...(this.config.sniName ? { servername: this.config.sniName } : {}) });
    this.agentCa = ca;
    return this.agent;
  }
}

/**
 * What a publish reads when the proxy cannot give a token: the proxy and the client id, the
 * HTTP status and OAuth2/AADSTS codes, never the pod's token or the request. A refusal (4xx or an
 * OAuth2 refusal code) is PERMISSION_DENIED; anything else UNAVAILABLE, so the kubelet retries.
 */
export function tokenProxyCredential(credential: TokenCredential, proxy: string, clientId: string): TokenCredential {
  return {
    async getToken(scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken | null> {
      try {
        return await credential.getToken(scopes, options);
      } catch (err) {
        if (err instanceof PodvaultError) throw err;
        const statusCode = (err as { statusCode?: unknown }).statusCode;
        const entra = entraErrorCodes(err);
        const codes = [entra.error, entra.aadsts].filter(Boolean).join(' ');
        const refused = (typeof statusCode === 'number' && statusCode >= 400 && statusCode < 500) || (entra.error !== undefined && REFUSALS.has(entra.error));
        throw new PodvaultError(
          refused ? 'permission-denied' : 'unavailable',
          `the AKS token proxy ${proxy} ${refused ? 'refused' : 'did not exchange'} the pod's token for client ${clientId}${typeof statusCode === 'number' ? ` (HTTP ${statusCode})` : ''}${codes ? `: ${codes}` : ''}`,
          { cause: err },
        );
      }
    },
  };
}

/** Largest CA bundle read for the proxy (a cluster CA is a few KiB). */
const MAX_CA_BYTES = 1024 * 1024;

const REFUSALS = new Set(['invalid_client', 'unauthorized_client', 'invalid_request', 'invalid_scope', 'invalid_grant', 'access_denied']);
