import { failedPrecondition } from '../../errors/podvault-error.js';

/** What `src/sealed/` needs to open markers: Key Vault's unwrapKey for one key version (its DataKeyUnwrapper). */
export interface DataKeyUnwrapper {
  unwrap(versionedKeyId: string, algorithm: 'RSA-OAEP-256', wrapped: Uint8Array, signal?: AbortSignal): Promise<Uint8Array>;
}

/** A sealed value of a template: the marker as `podvault seal` prints it, and where it is. */
export interface SealedUse {
  marker: string;
  line: number;
  column: number;
}

/**
 * The plaintext of each distinct marker of one template (marker → value), unwrapped by
 * `unwrapper` (the pod's identity). The seam to `src/sealed/` (findMarkers, openMarkers): until
 * that library is merged, a template holding a sealed value fails its publish with this message.
 */
export async function openSealedValues(uses: readonly SealedUse[], _unwrapper: DataKeyUnwrapper, label: string, _signal: AbortSignal): Promise<Map<string, string>> {
  if (uses.length === 0) return new Map();
  const first = uses[0] as SealedUse;
  throw failedPrecondition(`${label}: line ${first.line}, column ${first.column}: sealed values ({{pv:…}}) are not supported by this build of the driver`);
}
