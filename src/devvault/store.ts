import type { JsonWebKey, KeyObject } from 'node:crypto';
import { globMatch } from '../util/glob.js';
import type { KeyAction, Seed, SeedClient } from './seed.js';
import { KEY_ROLE_ACTIONS, versionId } from './seed.js';

export type ObjectKind = 'secrets' | 'keys' | 'certificates';

/** One version of a vault object; which fields are set depends on the kind. */
export interface StoredVersion {
  version: string;
  created: number;
  enabled: boolean;
  /** Expiry (unix seconds), if any. */
  expires?: number;
  /** secrets: the value; certificate-backed secrets: base64 PFX or PEM text. */
  value?: string;
  contentType?: string;
  /** secrets backing a certificate: the certificate's key id. */
  kid?: string;
  /** keys: the public JSON Web Key. */
  jwk?: JsonWebKey;
  /** keys: the private part, used by the crypto operations and never served. */
  privateKey?: KeyObject;
  /** certificates: the DER certificate. */
  cer?: Buffer;
}

export interface CertificateInput {
  /** DER of the leaf certificate. */
  cer: Buffer;
  /** The backing secret: base64 PFX (`application/x-pkcs12`) or PEM text (`application/x-pem-file`). */
  secretValue: string;
  contentType: 'application/x-pkcs12' | 'application/x-pem-file';
}

/** dev-vault's objects, in memory, with versions in creation order (last = current). */
export class VaultStore {
  private readonly objects: Record<ObjectKind, Map<string, StoredVersion[]>> = { secrets: new Map(), keys: new Map(), certificates: new Map() };
  private readonly clientMap: Map<string, SeedClient>;
  private clock = Math.floor(Date.now() / 1000) - 86_400;

  constructor(seed: Seed) {
    this.clientMap = new Map(seed.clients.map((c) => [c.clientId, c]));
    for (const s of seed.secrets) {
      for (const v of s.versions ?? [{ value: s.value ?? '', contentType: s.contentType, enabled: s.enabled }]) {
        this.add('secrets', s.name, { value: v.value, contentType: v.contentType, enabled: v.enabled });
      }
    }
  }

  get clients(): ReadonlyMap<string, SeedClient> {
    return this.clientMap;
  }

  /** Register (or replace) an identity, as an admin would in Entra ID and the vault's RBAC. */
  putClient(client: SeedClient): void {
    this.clientMap.set(client.clientId, client);
  }

  /** The current version, or the named one. */
  get(kind: ObjectKind, name: string, version?: string): StoredVersion | undefined {
    const versions = this.objects[kind].get(name);
    if (!versions) return undefined;
    return version ? versions.find((v) => v.version === version) : versions[versions.length - 1];
  }

  /** Names of the objects of one kind, in creation order. */
  names(kind: ObjectKind): string[] {
    return [...this.objects[kind].keys()];
  }

  list(kind: ObjectKind, name: string): readonly StoredVersion[] | undefined {
    return this.objects[kind].get(name);
  }

  /** Add a new current version; returns its id. Versions are a minute apart in `created`. */
  add(kind: ObjectKind, name: string, fields: Omit<StoredVersion, 'version' | 'created' | 'enabled'> & { enabled?: boolean }): string {
    const versions = this.objects[kind].get(name) ?? [];
    this.clock = Math.max(this.clock + 60, Math.floor(Date.now() / 1000) - 3600);
    const entry: StoredVersion = { ...fields, version: versionId(name, versions.length), created: this.clock, enabled: fields.enabled ?? true };
    versions.push(entry);
    this.objects[kind].set(name, versions);
    return entry.version;
  }

  /** What `az keyvault secret set` does: a new current version. */
  setSecret(name: string, value: string, contentType?: string): string {
    return this.add('secrets', name, { value, ...(contentType ? { contentType } : {}) });
  }

  /** A new current version of key `name` (what a rotation or `az keyvault key create` does). */
  putKey(name: string, jwk: JsonWebKey, privateKey?: KeyObject): string {
    return this.add('keys', name, { jwk, ...(privateKey ? { privateKey } : {}) });
  }

  /** A certificate version and its backing secret, as Key Vault keeps them (same version id). */
  putCertificate(name: string, input: CertificateInput): string {
    const version = this.add('certificates', name, { cer: input.cer });
    const versions = this.objects.secrets.get(name) ?? [];
    versions.push({ version, created: this.clock, enabled: true, value: input.secretValue, contentType: input.contentType, kid: `keys/${name}/${version}` });
    this.objects.secrets.set(name, versions);
    return version;
  }

  setEnabled(kind: ObjectKind, name: string, version: string | undefined, enabled: boolean): void {
    const entry = this.get(kind, name, version);
    if (entry) entry.enabled = enabled;
  }

  setExpiry(kind: ObjectKind, name: string, version: string | undefined, expires: number | undefined): void {
    const entry = this.get(kind, name, version);
    if (entry) entry.expires = expires;
  }

  /** Whether `clientId` may read object `name`: its `read` globs decide. */
  mayRead(clientId: string, name: string): boolean {
    const client = this.clientMap.get(clientId);
    return !!client && client.read.some((glob) => globMatch(glob, name));
  }

  /** Whether `clientId` may list versions and read properties of object `name` (no value): Key Vault Reader, or a reader of its value. */
  mayReadMetadata(clientId: string, name: string): boolean {
    return this.clientMap.get(clientId)?.keyVaultReader === true || this.mayRead(clientId, name);
  }

  /**
   * Whether `clientId` may perform `action` on key `name`: one of its crypto roles grants it on
   * that name, or (get only) its `read` globs name the key, as for every other object.
   */
  mayUseKey(clientId: string, name: string, action: KeyAction): boolean {
    const client = this.clientMap.get(clientId);
    if (!client) return false;
    if (action === 'get' && this.mayRead(clientId, name)) return true;
    return (client.crypto ?? []).some((grant) => KEY_ROLE_ACTIONS[grant.role].includes(action) && grant.keys.some((glob) => globMatch(glob, name)));
  }
}
