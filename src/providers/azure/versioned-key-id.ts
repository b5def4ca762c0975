import { invalidArgument } from '../../errors/podvault-error.js';

/** One key version of a vault, as a sealed value names it. */
export interface VersionedKeyId {
  /** `https://<vault>/keys/<name>/<version>`, as given. */
  id: string;
  vaultUrl: string;
  name: string;
  version: string;
}

/**
 * `https://<vault>/keys/<name>/<version>` from a sealed value (its author's text): an https
 * origin without credentials, query or fragment, a key name and a version, nothing else.
 */
export function parseVersionedKeyId(id: string, label: string): VersionedKeyId {
  let url: URL | undefined;
  try {
    url = new URL(id);
  } catch {
    url = undefined;
  }
  const [, keys, name = '', version = '', ...rest] = url ? url.pathname.split('/') : [];
  if (!url || url.protocol !== 'https:' || url.username || url.password || url.search || url.hash || keys !== 'keys' || !/^[-A-Za-z0-9]{1,127}$/.test(name) || !/^[A-Za-z0-9]{1,64}$/.test(version) || rest.length > 0) {
    throw invalidArgument(`${label}: a sealed value names key ${JSON.stringify(id.slice(0, 200))}, which is not https://<vault>/keys/<name>/<version>`);
  }
  return { id: `${url.origin}/keys/${name}/${version}`, vaultUrl: url.origin, name, version };
}
