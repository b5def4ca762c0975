import { PodvaultError } from '../../errors/podvault-error.js';
import { findMarkers, openMarkers, SealedError } from '../../sealed/index.js';
import type { DataKeyUnwrapper, SealedMarker } from '../../sealed/index.js';

/** A sealed value of a template: the marker as `podvault seal` prints it, and where it is. */
export interface SealedUse {
  marker: string;
  line: number;
  column: number;
}

/**
 * The plaintext of each distinct marker of one template (marker → value), through `src/sealed/`:
 * each marker decoded (its limits and checks before any vault call), then every distinct data
 * key unwrapped once by `unwrapper` (the pod's identity) and each value authenticated. Errors
 * name the template (`label`), the marker's line and column in it and the key, never a value.
 */
export async function openSealedValues(uses: readonly SealedUse[], unwrapper: DataKeyUnwrapper, label: string, signal: AbortSignal): Promise<Map<string, string>> {
  if (uses.length === 0) return new Map();
  try {
    // The template's scan found each marker; it is decoded alone and placed back at its position.
    const markers = uses.map((use): SealedMarker => {
      const [marker] = findMarkers(use.marker);
      if (!marker) throw new SealedError('invalid-argument', 'malformed {{pv:…}} marker', use);
      return { ...marker, line: use.line, column: use.column };
    });
    return await openMarkers(markers, unwrapper, signal);
  } catch (err) {
    if (err instanceof SealedError) {
      const at = err.position ?? uses[0];
      throw new PodvaultError(err.kind, `${label}: line ${at?.line ?? 1}, column ${at?.column ?? 1}: ${err.reason}`, { cause: err.cause });
    }
    throw err;
  }
}
