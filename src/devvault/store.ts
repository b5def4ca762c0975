import { globMatch } from '../util/glob.js';
import type { Seed, SeedClient } from './seed.js';
import { versionId } from './seed.js';

export interface StoredVersion {
  version: string;
  value: string;
  contentType?: string;
  enabled: boolean;
  created: number;
}

/** dev-vault's objects, in memory, with versions in creation order (last = current). */
export class VaultStore {
  private readonly secrets = new Map<string, StoredVersion[]>();
  private readonly clientMap: Map<string, SeedClient>;

  constructor(seed: Seed) {
    this.clientMap = new Map(seed.clients.map((c) => [c.clientId, c]));
    const base = Math.floor(Date.now() / 1000) - 86_400;
    for (const s of seed.secrets) {
      const versions = s.versions ?? [{ value: s.value ?? '', contentType: s.contentType, enabled: s.enabled }];
      this.secrets.set(
        s.name,
        versions.map((v, i) => ({ version: versionId(s.name, i), value: v.value, contentType: v.contentType, enabled: v.enabled, created: base + i * 60 })),
      );
    }
  }

  /** The current version, or the named one. */
  getSecret(name: string, version?: string): StoredVersion | undefined {
    const versions = this.secrets.get(name);
    if (!versions) return undefined;
    return version ? versions.find((v) => v.version === version) : versions[versions.length - 1];
  }

  listVersions(name: string): readonly StoredVersion[] | undefined {
    return this.secrets.get(name);
  }

  /** Add a new current version (what `az keyvault secret set` does); returns its id. */
  setSecret(name: string, value: string, contentType?: string): string {
    const versions = this.secrets.get(name) ?? [];
    const entry = { version: versionId(name, versions.length), value, contentType, enabled: true, created: Math.floor(Date.now() / 1000) };
    versions.push(entry);
    this.secrets.set(name, versions);
    return entry.version;
  }

  get clients(): ReadonlyMap<string, SeedClient> {
    return this.clientMap;
  }

  /** Register (or replace) an identity, as an admin would in Entra ID and the vault's RBAC. */
  putClient(client: SeedClient): void {
    this.clientMap.set(client.clientId, client);
  }

  /** Whether `clientId` may read object `name`: its `read` globs decide. */
  mayRead(clientId: string, name: string): boolean {
    const client = this.clients.get(clientId);
    return !!client && client.read.some((glob) => globMatch(glob, name));
  }
}

