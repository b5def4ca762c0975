import { createHash } from 'node:crypto';
import type { AzureCloud } from '../providers/azure/clouds.js';

/**
 * The key-encryption key the plugin is configured with: a vault origin, a key name, and a version
 * when pinned. Without a version the plugin follows the key's current version, so a rotation in
 * Key Vault becomes a new `key_id` at the next health round trip.
 */
export interface KeyRef {
  /** `https://host[:port]`, no trailing slash. */
  vaultUrl: string;
  name: string;
  version?: string;
}

const NAME = /^[-A-Za-z0-9]{1,127}$/;
const VERSION = /^[A-Za-z0-9]{1,64}$/;

/** Managed HSM DNS suffixes, by the cloud's vault suffix (`--managed-hsm` with `--keyvault-name`). */
const MANAGED_HSM_SUFFIX: Record<string, string> = {
  'vault.azure.net': 'managedhsm.azure.net',
  'vault.usgovcloudapi.net': 'managedhsm.usgovcloudapi.net',
  'vault.azure.cn': 'managedhsm.azure.cn',
};

/** `--key-id https://<vault>/keys/<name>[/<version>]`; throws a message naming the flag. */
export function parseKeyId(text: string): KeyRef {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new Error(`--key-id ${JSON.stringify(text)} is not a URL; give https://<vault>/keys/<name>[/<version>]`);
  }
  const [, keys, name, version, ...rest] = url.pathname.replace(/\/$/, '').split('/');
  if (url.protocol !== 'https:' || url.search || url.hash || url.username || keys !== 'keys' || !name || !NAME.test(name) || rest.length > 0 || (version !== undefined && !VERSION.test(version))) {
    throw new Error(`--key-id ${JSON.stringify(text)} must be https://<vault>/keys/<name>[/<version>] (name: letters, digits, dashes; version: letters and digits)`);
  }
  return { vaultUrl: url.origin, name, ...(version ? { version } : {}) };
}

/** The Azure plugin's `--keyvault-name`, `--key-name`, `--key-version` and `--managed-hsm`, in the cloud of azure.json. */
export function keyRefFromAzureFlags(flags: { keyvaultName: string; keyName: string; keyVersion?: string; managedHsm: boolean }, cloud: AzureCloud): KeyRef {
  if (!/^[-A-Za-z0-9]{3,24}$/.test(flags.keyvaultName)) throw new Error(`--keyvault-name ${JSON.stringify(flags.keyvaultName)} must be 3-24 letters, digits or dashes`);
  if (!NAME.test(flags.keyName)) throw new Error(`--key-name ${JSON.stringify(flags.keyName)} must be 1-127 letters, digits or dashes`);
  if (flags.keyVersion !== undefined && flags.keyVersion !== '' && !VERSION.test(flags.keyVersion)) throw new Error(`--key-version ${JSON.stringify(flags.keyVersion)} must be letters and digits`);
  const suffix = flags.managedHsm ? MANAGED_HSM_SUFFIX[cloud.vaultSuffix] : cloud.vaultSuffix;
  if (!suffix) throw new Error(`--managed-hsm: no Managed HSM domain is known for cloud ${cloud.name}; give --key-id instead`);
  return { vaultUrl: `https://${flags.keyvaultName.toLowerCase()}.${suffix}`, name: flags.keyName, ...(flags.keyVersion ? { version: flags.keyVersion } : {}) };
}

/** `https://<vault>/keys/<name>/<version>`: Key Vault's id of one key version. */
export function versionedKeyId(ref: KeyRef, version: string): string {
  return `${ref.vaultUrl}/keys/${ref.name}/${version}`;
}

/** The version a versioned key id names, if it is a version of `ref`'s key; undefined otherwise. */
export function versionOf(ref: KeyRef, kid: string): string | undefined {
  const prefix = `${ref.vaultUrl}/keys/${ref.name}/`;
  if (!kid.startsWith(prefix)) return undefined;
  const version = kid.slice(prefix.length);
  return VERSION.test(version) ? version : undefined;
}

/**
 * The KMS `key_id` of a key version: the SHA-256 (hex) of its versioned key id. Public (a digest
 * of an id, no key material), stable (one version, one id) and never reused (a new version is a new
 * id). It is the formula Azure/kubernetes-kms uses, so a pinned key keeps its key_id across a migration.
 */
export function kmsKeyId(versionedKid: string): string {
  return createHash('sha256').update(versionedKid).digest('hex');
}

export function describeKeyRef(ref: KeyRef): string {
  return `${ref.vaultUrl}/keys/${ref.name}${ref.version ? `/${ref.version}` : ' (versionless: follows the current version)'}`;
}
