/** Sealed values (`{{pv:…}}` markers): what the CLI and the driver's template rendering use. */
export type { DataKeyUnwrapper, DataKeyWrapper } from './data-keys.js';
export { decodePayload, MAX_MARKER_CHARS, MAX_VALUE_BYTES, WRAP_ALGORITHM } from './format.js';
export { findMarkers, MAX_MARKERS_PER_TEXT } from './markers.js';
export type { SealedMarker } from './markers.js';
export { MAX_DATA_KEYS_PER_TEXT, openMarkers } from './open-markers.js';
export { renderText, resealText } from './render-text.js';
export type { RenderOptions, ResealOptions } from './render-text.js';
export { findS5Markers, openS5Marker, parseS5AesKey } from './s5-aes.js';
export { sealValues } from './seal-values.js';
export { SealedError } from './sealed-error.js';
export type { MarkerPosition } from './sealed-error.js';
export { parseVersionedKeyId } from './sealed-key-id.js';
export { KeyVaultDataKeys } from './key-vault-data-keys.js';
export type { KeyVaultDataKeysOptions } from './key-vault-data-keys.js';
export { parsePath, sealDocument } from './seal-document.js';
export type { DocumentFormat } from './seal-document.js';
