import { DEFAULT_MAX_CLASS_OBJECTS, DEFAULT_MAX_CLASS_SIZE, DEFAULT_MAX_OBJECT_SIZE, DEFAULT_TMPFS_SIZE, parseSize } from '../config/driver-config.js';
import { invalidArgument, resourceExhausted } from '../errors/podvault-error.js';

/**
 * What one publish may make the driver hold in memory. The driver runs under a fixed memory limit
 * on every node (the DaemonSet's 256Mi) and a class is written by a tenant: without these, one
 * 25 KB secret listed under 12,000 aliases was 12,000 copies in memory before the tmpfs cap was
 * ever checked, and the driver was OOM-killed on every kubelet retry. Each limit is checked before
 * the work it would cause, and each error names the limit and its flag.
 *
 * Limits of the class itself (size, object count) are INVALID_ARGUMENT: the class must change.
 * Limits on what the store returned (object size, volume total) are RESOURCE_EXHAUSTED: they
 * depend on the vault's current contents as well, so a later retry can succeed.
 */
export interface FetchLimits {
  /** Bytes of a class's `spec.parameters`, keys and values in UTF-8; checked before any parsing. */
  maxClassBytes: number;
  /** Files one class may produce, `objectVersionHistory` expanded. */
  maxObjects: number;
  /** Bytes of one object as the store returned it, checked before it is formatted or copied. */
  maxObjectBytes: number;
  /** Bytes of all files of one volume, counted as objects arrive (the tmpfs size). */
  maxVolumeBytes: number;
}

/** The flag that sets each limit, for the messages. */
export const LIMIT_FLAGS: Readonly<Record<keyof FetchLimits, string>> = {
  maxClassBytes: '--max-class-size',
  maxObjects: '--max-class-objects',
  maxObjectBytes: '--max-object-size',
  maxVolumeBytes: '--tmpfs-size',
};

/**
 * The driver's default flags. Real classes list tens of objects in a few KB; Key Vault secrets are
 * at most 25 KB (a PEM certificate with its chain a few KB): the defaults leave a wide margin.
 */
export const DEFAULT_FETCH_LIMITS: FetchLimits = {
  maxClassBytes: parseSize(DEFAULT_MAX_CLASS_SIZE),
  maxObjects: DEFAULT_MAX_CLASS_OBJECTS,
  maxObjectBytes: parseSize(DEFAULT_MAX_OBJECT_SIZE),
  maxVolumeBytes: parseSize(DEFAULT_TMPFS_SIZE),
};

/** `SecretProviderClass default/app`, the name a limit message uses for a class. */
export function classLabel(namespace: string, className: string): string {
  return `SecretProviderClass ${namespace}/${className}`;
}

/** Bytes of `spec.parameters` as the class holds them, counted without parsing anything. */
export function parametersBytes(parameters: Readonly<Record<string, string>>): number {
  let bytes = 0;
  for (const [key, value] of Object.entries(parameters)) bytes += Buffer.byteLength(key, 'utf8') + Buffer.byteLength(String(value), 'utf8');
  return bytes;
}

export function checkClassSize(where: string, parameters: Readonly<Record<string, string>>, limits: FetchLimits): void {
  const bytes = parametersBytes(parameters);
  if (bytes > limits.maxClassBytes) {
    throw invalidArgument(`${where}: spec.parameters hold ${bytes} bytes, over the limit of ${limits.maxClassBytes} bytes (${LIMIT_FLAGS.maxClassBytes})`);
  }
}

export function checkObjectCount(where: string, count: number, limits: FetchLimits, expanded = false): void {
  if (count > limits.maxObjects) {
    throw invalidArgument(
      `${where}: ${count} objects${expanded ? ' after objectVersionHistory expansion' : ''}, over the limit of ${limits.maxObjects} objects per class (${LIMIT_FLAGS.maxObjects})`,
    );
  }
}

export function checkObjectSize(what: string, bytes: number, limits: FetchLimits): void {
  if (bytes > limits.maxObjectBytes) {
    throw resourceExhausted(`${what}: the object is ${bytes} bytes, over the limit of ${limits.maxObjectBytes} bytes per object (${LIMIT_FLAGS.maxObjectBytes})`);
  }
}

/**
 * The bytes of one volume, counted as its objects arrive and before anything is written, so a
 * class whose files cannot fit the tmpfs fails after at most the limit (plus the objects being
 * formatted at that moment) is in memory, not after all of it is.
 */
export class VolumeBudget {
  private used = 0;

  constructor(
    private readonly where: string,
    private readonly limits: FetchLimits,
  ) {}

  add(what: string, bytes: number): void {
    this.used += bytes;
    if (this.used > this.limits.maxVolumeBytes) {
      throw resourceExhausted(
        `${this.where}: the volume's files exceed ${this.limits.maxVolumeBytes} bytes (${LIMIT_FLAGS.maxVolumeBytes}) at ${what}; list fewer or smaller objects, or ask the node's operator for a larger ${LIMIT_FLAGS.maxVolumeBytes}`,
      );
    }
  }
}
