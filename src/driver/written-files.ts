import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { ProviderFile } from '../providers/provider.js';

/** The key of this process's digests: random, never stored, so a digest says nothing about a value. */
const DIGEST_KEY = randomBytes(32);

function digestOf(contents: Buffer): Buffer {
  return createHmac('sha256', DIGEST_KEY).update(contents).digest();
}

/**
 * What the driver last wrote into a volume, so that a rotation that keeps objects (the version
 * watch) takes back only bytes it wrote itself, at that path, made the same way:
 *   - `madeFrom`: each file's `ProviderFile.madeFrom` (vault, object, version, the class options
 *     that shape the bytes); the provider keeps a file only when the edited class would make it
 *     the same way;
 *   - a digest of each file's bytes, which `verified` checks what is read back against. The
 *     volume's tmpfs is read-only to the pod, but reading back must not trust whoever else could
 *     change it (root on the node remounting it, a bug elsewhere): a file overwritten in place, a
 *     hard link to another file of the volume, anything swapped in is refetched instead, and the
 *     rotation's write then heals the volume (the writer compares, and the bytes differ).
 * The digests are HMACs under a key of this process only, kept in memory only (never in the
 * state directory): unlike a plain hash of a short secret, they cannot be used to guess it. So
 * a volume recovered after a restart has none, and its first rotation fetches everything.
 */
export class WrittenFiles {
  private constructor(
    readonly madeFrom: Readonly<Record<string, string>>,
    private readonly digests: ReadonlyMap<string, Buffer>,
  ) {}

  static of(files: readonly ProviderFile[]): WrittenFiles {
    const madeFrom: Record<string, string> = Object.create(null) as Record<string, string>;
    const digests = new Map<string, Buffer>();
    for (const f of files) {
      if (f.madeFrom === undefined) continue; // env files, templates: made again each time
      madeFrom[f.path] = f.madeFrom;
      digests.set(f.path, digestOf(f.contents));
    }
    return new WrittenFiles(madeFrom, digests);
  }

  /** The files read back whose bytes are exactly those written at their path; others are left out. */
  verified(read: ReadonlyMap<string, Buffer>): Map<string, Buffer> {
    const out = new Map<string, Buffer>();
    for (const [path, bytes] of read) {
      const written = this.digests.get(path);
      if (written && timingSafeEqual(written, digestOf(bytes))) out.set(path, bytes);
    }
    return out;
  }
}
