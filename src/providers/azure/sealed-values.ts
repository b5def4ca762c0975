import { PodvaultError } from '../../errors/podvault-error.js';
// Not `src/sealed/index.js`: it also exports the CLI's Key Vault wrapper (@azure/keyvault-keys).
import { findMarkers } from '../../sealed/markers.js';
import type { SealedMarker } from '../../sealed/markers.js';
import { openMarkers } from '../../sealed/open-markers.js';
import { SealedError } from '../../sealed/sealed-error.js';
import type { DataKeyUnwrapper } from '../../sealed/data-keys.js';

/** A sealed value of a template: the marker as `podvault seal` prints it, and where it is. */
export interface SealedUse {
  marker: string;
  line: number;
  column: number;
}

/**
 * Each distinct marker of one template decoded by `src/sealed/` (its limits and format checks, no
 * vault call) and placed at its position in the template; `label` names the template in errors.
 */
export function decodeSealedValues(uses: readonly SealedUse[], label: string): SealedMarker[] {
  return withTemplatePosition(label, uses[0], () =>
    uses.map((use): SealedMarker => {
      try {
        const [marker] = findMarkers(use.marker);
        if (!marker) throw new SealedError('invalid-argument', 'malformed {{pv:…}} marker');
        return { ...marker, line: use.line, column: use.column };
      } catch (err) {
        // findMarkers saw the marker alone: its position is the template's.
        throw err instanceof SealedError ? new SealedError(err.kind, err.reason, use, { cause: err.cause }) : err;
      }
    }),
  );
}

/**
 * The plaintext of each marker (marker text → value): every distinct data key unwrapped once by
 * `unwrapper` (the pod's identity), then each value authenticated. Errors name the template, the
 * marker's line and column and the key, never a value.
 */
export async function openSealedValues(markers: readonly SealedMarker[], unwrapper: DataKeyUnwrapper, label: string, signal: AbortSignal): Promise<Map<string, string>> {
  if (markers.length === 0) return new Map();
  return withTemplatePosition(label, markers[0], () => openMarkers(markers, unwrapper, signal));
}

function withTemplatePosition<T>(label: string, fallback: { line: number; column: number } | undefined, work: () => T): T {
  const rethrow = (err: unknown): never => {
    if (err instanceof SealedError) {
      const at = err.position ?? fallback;
      throw new PodvaultError(err.kind, `${label}: line ${at?.line ?? 1}, column ${at?.column ?? 1}: ${err.reason}`, { cause: err.cause });
    }
    throw err;
  };
  try {
    const result = work();
    return (result instanceof Promise ? result.catch(rethrow) : result) as T;
  } catch (err) {
    return rethrow(err);
  }
}
