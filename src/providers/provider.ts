import type { Logger } from '../log.js';
import type { PayloadFile } from '../driver/atomic-writer.js';
import { invalidArgument } from '../errors/podvault-error.js';
import type { PodInfo } from '../identity/pod-info.js';

/** A file a provider returns: what to write, plus the object and version it came from. */
export interface ProviderFile extends PayloadFile {
  /** `<type>/<name>`, e.g. `secret/db-password`. */
  objectId: string;
  version: string;
  /**
   * The object whose current version this file follows (set for an unpinned object's file, or the
   * newest of a version history): what the version watch is asked about. Absent for pinned ones.
   */
  follows?: FollowedObject;
  /** Where the bytes came from in this fetch: the vault, or the volume's own file (`MountedReuse`). */
  from?: 'vault' | 'mounted';
  /**
   * What made these bytes: the vault, the object, its version and every class option that shapes
   * them. A rotation keeps a mounted file only when what would make it now is the same, so a class
   * edited between rotations (another vault, encoding, format, jmesPath expression…) is fetched
   * again. Absent (env files, templates): made again each time, never kept.
   */
  madeFrom?: string;
}

/** An object a volume follows to its current version. */
export interface FollowedObject {
  /** The vault origin, `https://host[:port]`. */
  vaultUrl: string;
  /** The class's objectType: `secret`, `key` or `cert`. */
  objectType: string;
  objectName: string;
}

/**
 * What a rotation may keep instead of fetching again (the version watch, docs/rotation.md): an
 * object whose mounted version is still current, or pinned, is read back from the volume; every
 * other object is fetched, as the pod's identity, as always.
 */
export interface MountedReuse {
  /** What the volume holds: `<objectId>:<path>` -> version, as the last fetch's files gave them. */
  mounted: Readonly<Record<string, string>>;
  /** What made each file the driver wrote, by path (`ProviderFile.madeFrom`): kept only when the same. */
  madeFrom: Readonly<Record<string, string>>;
  /** The object's current version when the version watch vouches for it (fresh); undefined: fetch it. */
  currentVersion(object: FollowedObject): Promise<string | undefined>;
  /**
   * The bytes of these files as podvault wrote them; a path it cannot read back, or whose bytes
   * are not the ones it wrote there, is absent.
   */
  read(paths: readonly string[]): Promise<ReadonlyMap<string, Buffer>>;
}

/** Everything a provider may use for one publish. */
export interface FetchRequest {
  className: string;
  pod: PodInfo;
  /** `spec.parameters` of the SecretProviderClass. */
  parameters: Readonly<Record<string, string>>;
  /** The nodePublishSecretRef contents. Never logged. */
  secrets: Readonly<Record<string, string>>;
  /** Service-account tokens by audience. Never logged. */
  tokens: Readonly<Record<string, string>>;
  signal: AbortSignal;
  log: Logger;
  /** When the publish (or rotation) began, epoch ms: shared fetch results are never older. */
  startedAt: number;
  /** A rotation's files it may keep (version watch); absent: every object is fetched. */
  reuse?: MountedReuse;
}

/**
 * A secret store. Providers return data; only the mount engine writes, after checking every
 * path. A fetch either returns every file of the class or throws a PodvaultError: never a partial set.
 */
export interface Provider {
  /** The `spec.provider` value of the classes it serves, e.g. `azure`. */
  readonly name: string;
  fetch(request: FetchRequest): Promise<ProviderFile[]>;
}

export class ProviderRegistry {
  private readonly providers = new Map<string, Provider>();

  constructor(providers: readonly Provider[]) {
    for (const p of providers) this.providers.set(p.name, p);
  }

  get(name: string, className: string): Provider {
    const provider = this.providers.get(name);
    if (!provider) {
      throw invalidArgument(
        `SecretProviderClass ${JSON.stringify(className)} names provider ${JSON.stringify(name)}; podvault serves ${[...this.providers.keys()].join(', ')}`,
      );
    }
    return provider;
  }
}
