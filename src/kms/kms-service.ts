import { unavailable } from '../errors/podvault-error.js';
import type { KeyRef } from './key-ref.js';
import { versionedKeyId } from './key-ref.js';
import type { KeyHealth } from './key-health.js';
import type { KeyVaultWrapper, VaultCallOptions } from './key-vault-wrapper.js';
import { annotationsFor, checkDecryptRequest, checkEncryptAnswer, checkPlaintext, checkUnwrapped } from './envelope.js';
import type { DecryptRequest, DecryptResponse, EncryptRequest, EncryptResponse, StatusResponse } from './proto.js';

/** The KMS API version the plugin reports; kube-apiserver requires it never to change. */
export const KMS_API_VERSION = 'v2';

/**
 * The three KMS v2 calls as plain functions, below the gRPC adapter: they raise PodvaultErrors
 * and never see gRPC. Encrypt wraps under the version the last health round trip found (the one
 * Status reports), so its key_id always equals Status's; Decrypt unwraps with the version its
 * annotations name, once `checkDecryptRequest` has accepted them.
 */
export class KmsService {
  constructor(
    private readonly key: KeyRef,
    private readonly health: KeyHealth,
    private readonly wrapper: KeyVaultWrapper,
  ) {}

  status(): StatusResponse {
    const { healthz, keyId } = this.health.status();
    return { version: KMS_API_VERSION, healthz, keyId };
  }

  async encrypt(request: EncryptRequest, call: VaultCallOptions): Promise<EncryptResponse> {
    checkPlaintext(request.plaintext);
    const state = this.health.current();
    if (!state) throw unavailable(`Encrypt: no key version of ${this.key.vaultUrl}/keys/${this.key.name} is known yet (${this.health.status().healthz})`);
    const ciphertext = await this.wrapper.wrap(state.version, request.plaintext, call, state.key);
    const annotations = annotationsFor(versionedKeyId(this.key, state.version));
    checkEncryptAnswer(ciphertext, state.keyId, annotations);
    return { ciphertext, keyId: state.keyId, annotations };
  }

  async decrypt(request: DecryptRequest, call: VaultCallOptions): Promise<DecryptResponse> {
    const version = checkDecryptRequest(request, this.key);
    const plaintext = await this.wrapper.unwrap(version, request.ciphertext, call);
    checkUnwrapped(plaintext, version);
    return { plaintext };
  }
}
