import type { Logger } from '../log.js';
import type { PayloadFile } from '../driver/atomic-writer.js';
import { invalidArgument } from '../errors/podvault-error.js';
import type { PodInfo } from '../identity/pod-info.js';

/** A file a provider returns: what to write, plus the object and version it came from. */
export interface ProviderFile extends PayloadFile {
  /** `<type>/<name>`, e.g. `secret/db-password`. */
  objectId: string;
  version: string;
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
