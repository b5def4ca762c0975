import { readFile } from 'node:fs/promises';
import type { ServiceAccountKeySource } from '../identity/pod-token.js';

/**
 * Standalone mode's service-account keys: a JWKS file (what `/openid/v1/jwks` serves) and the
 * issuer named by a flag, for clusters whose API server the node cannot reach for discovery.
 */
export class FileServiceAccountKeys implements ServiceAccountKeySource {
  constructor(
    private readonly jwksFile: string,
    private readonly issuer: string,
  ) {}

  get description(): string {
    return `JWKS file ${this.jwksFile}`;
  }

  async fetch(): Promise<{ issuer: string; jwks: unknown }> {
    return { issuer: this.issuer, jwks: JSON.parse(await readFile(this.jwksFile, 'utf8')) as unknown };
  }
}
