/**
 * What opening a marker needs from a key service: unwrap a data key with one key version.
 * podvault's implementation calls Key Vault's `unwrapKey` (@azure/keyvault-keys CryptographyClient)
 * as the caller's identity, so Key Vault RBAC on the key decides who may read which values.
 */
export interface DataKeyUnwrapper {
  unwrap(versionedKeyId: string, algorithm: 'RSA-OAEP-256', wrapped: Uint8Array, signal?: AbortSignal): Promise<Uint8Array>;
}

/** What sealing needs: wrap a fresh data key with a key, and say which version wrapped it. */
export interface DataKeyWrapper {
  /**
   * `keyId` is `https://<vault>/keys/<name>[/<version>]`; without a version the key's current
   * version wraps, and `versionedKeyId` names it (the id the vault answered, not the one asked).
   */
  wrap(keyId: string, algorithm: 'RSA-OAEP-256', dataKey: Uint8Array, signal?: AbortSignal): Promise<{ versionedKeyId: string; wrapped: Uint8Array }>;
}
