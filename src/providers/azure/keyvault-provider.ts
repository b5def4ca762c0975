import { SecretClient } from '@azure/keyvault-secrets';
import { status } from '@grpc/grpc-js';
import { CsiError, invalidArgument, permissionDenied } from '../../driver/csi-error.js';
import { pipelineOptions } from '../../identity/azure-sdk-settings.js';
import type { AzureSdkSettings } from '../../identity/azure-sdk-settings.js';
import type { IdentityResolver, ResolvedIdentity } from '../../identity/identity-resolver.js';
import { ruleAllows } from '../../identity/binding-policy.js';
import { LruCache } from '../../util/lru-cache.js';
import { mapLimit } from '../../util/map-limit.js';
import type { FetchRequest, Provider, ProviderFile } from '../provider.js';
import { keyVaultError } from './errors.js';
import { parseAzureParameters } from './parameters.js';
import type { AzureParameters, KeyVaultObject } from './parameters.js';

export interface KeyVaultProviderOptions {
  settings: AzureSdkSettings;
  identities: IdentityResolver;
  /** Objects of one publish fetched at once. */
  fetchConcurrency: number;
}

/**
 * The Azure Key Vault provider: the parameters of the upstream Azure provider, the identity from
 * `src/identity/`, the real @azure SDK clients (one per vault and identity, reused so their token
 * caches and connections are too).
 */
export class KeyVaultProvider implements Provider {
  readonly name = 'azure';
  private readonly secretClients = new LruCache<SecretClient>();

  constructor(private readonly options: KeyVaultProviderOptions) {}

  async fetch(request: FetchRequest): Promise<ProviderFile[]> {
    const params = parseAzureParameters(request.parameters);
    this.checkVaultAllowed(params);
    const identity = await this.options.identities.resolve(
      { pod: request.pod, tenantId: params.tenantId, cloudAuthorityHost: params.cloud.authorityHost, parameters: params.identity, secrets: request.secrets, tokens: request.tokens },
      request.log,
    );
    const rule = identity.objectRule;
    for (const object of params.objects) {
      if (rule && !ruleAllows(rule, params.vaultUrl, object.objectName)) {
        throw permissionDenied(`pod ${request.pod.namespace}/${request.pod.name} may not read ${object.objectType} ${JSON.stringify(object.objectName)} from ${params.vaultUrl}: not in ${rule.source}`);
      }
    }
    request.log.info({ vault: params.vaultUrl, identity: identity.description, objects: params.objects.length }, 'fetching from Key Vault');
    const client = this.secretClient(params, identity);
    return mapLimit(params.objects, this.options.fetchConcurrency, (object) => this.fetchObject(client, params.vaultUrl, object, request.signal));
  }

  private async fetchObject(client: SecretClient, vaultUrl: string, object: KeyVaultObject, signal: AbortSignal): Promise<ProviderFile> {
    const what = `${object.objectType} ${JSON.stringify(object.objectName)}${object.objectVersion ? ` version ${object.objectVersion}` : ''}`;
    if (object.objectType !== 'secret') {
      throw new CsiError(status.UNIMPLEMENTED, `vault ${vaultUrl}: ${what}: objectType ${object.objectType} is not supported yet; only secret objects are`);
    }
    let secret;
    try {
      secret = await client.getSecret(object.objectName, { version: object.objectVersion || undefined, abortSignal: signal });
    } catch (err) {
      throw keyVaultError(err, vaultUrl, what);
    }
    if (secret.value === undefined) throw new CsiError(status.INTERNAL, `vault ${vaultUrl}: ${what}: the response has no value`);
    return {
      path: object.fileName,
      mode: object.mode,
      contents: decodeSecret(secret.value, object, vaultUrl),
      objectId: `secret/${object.objectName}`,
      version: secret.properties.version ?? '',
    };
  }

  /**
   * A class may name its vault with `vaultUri`. Outside the cloud's own vault domain the driver
   * would hand the pod identity's token to whatever host that is, so such origins must be allowed
   * by the operator (`--allow-vault-uri`).
   */
  private checkVaultAllowed(params: AzureParameters): void {
    if (!params.vaultUrlExplicit || this.isCloudVault(params)) return;
    if (!this.options.settings.allowedVaultOrigins.includes(params.vaultUrl)) {
      throw invalidArgument(
        `parameter vaultUri ${params.vaultUrl} is outside ${params.cloud.vaultSuffix}; the node's operator must allow it with --allow-vault-uri`,
      );
    }
  }

  private isCloudVault(params: AzureParameters): boolean {
    const host = new URL(params.vaultUrl).hostname;
    return host.endsWith(`.${params.cloud.vaultSuffix}`) && new URL(params.vaultUrl).port === '';
  }

  private secretClient(params: AzureParameters, identity: ResolvedIdentity): SecretClient {
    const { settings } = this.options;
    return this.secretClients.getOrCreate(`${params.vaultUrl}|${identity.key}`, () =>
      new SecretClient(params.vaultUrl, identity.credential, {
        // For a cloud vault the SDK checks that the vault's auth challenge names the vault's own
        // resource; an operator-allowed custom origin cannot pass that check by construction.
        disableChallengeResourceVerification: !this.isCloudVault(params),
        ...pipelineOptions(settings),
      }),
    );
  }
}

/** The secret's bytes: UTF-8 text by default; `hex` and `base64` decode the stored text first. */
function decodeSecret(value: string, object: KeyVaultObject, vaultUrl: string): Buffer {
  switch (object.objectEncoding) {
    case 'utf-8':
      return Buffer.from(value, 'utf8');
    case 'hex': {
      if (!/^([0-9A-Fa-f]{2})*$/.test(value)) {
        throw invalidArgument(`vault ${vaultUrl}: secret ${JSON.stringify(object.objectName)}: objectEncoding hex, but the stored value is not hex`);
      }
      return Buffer.from(value, 'hex');
    }
    case 'base64': {
      if (!/^[A-Za-z0-9+/\r\n]*={0,2}\s*$/.test(value)) {
        throw invalidArgument(`vault ${vaultUrl}: secret ${JSON.stringify(object.objectName)}: objectEncoding base64, but the stored value is not base64`);
      }
      return Buffer.from(value, 'base64');
    }
  }
}
