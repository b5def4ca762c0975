import { PodvaultError } from '../errors/podvault-error.js';
import type { ErrorKind } from '../errors/podvault-error.js';

/** Where in a text a marker starts: 1-based line and column (columns count UTF-16 units). */
export interface MarkerPosition {
  line: number;
  column: number;
}

/**
 * A sealed marker that cannot be read or opened. The message starts with `line L column C` and
 * names the key id when the marker names one; it never holds a value, a data key or a marker's
 * payload (only its position). `position` lets a caller prefix its own file name (`FILE:L:C`).
 */
export class SealedError extends PodvaultError {
  readonly position: MarkerPosition | undefined;
  /** The message without the position prefix. */
  readonly reason: string;

  constructor(kind: ErrorKind, reason: string, position?: MarkerPosition, options?: { cause?: unknown }) {
    super(kind, position ? `line ${position.line} column ${position.column}: ${reason}` : reason, options);
    this.name = 'SealedError';
    this.reason = reason;
    this.position = position;
  }
}
