import { internal, invalidArgument, resourceExhausted } from '../../errors/podvault-error.js';
import { pkcs12Converter, pkcs12Failure } from '../../untrusted/pkcs12-converter.js';
import { derToPem, publicKeyPemFromJwk } from '../../util/pem.js';
import type { KeyVaultObject, ObjectType } from './parameters.js';
import type { VaultClients } from './vault-clients.js';

/** Whether the Azure provider's `.crt`/`.key` split applies: a certificate-backed secret written as PEM. */
export function isPemCertificateSecret(raw: RawObject, object: KeyVaultObject): boolean {
  return object.objectType === 'secret' && raw.certificateBacked && object.objectFormat !== 'pfx';
}

/** What Key Vault returned for one object version, before it is formatted into a file. */
export interface RawObject {
  version: string;
  /** secret value, or PEM of a key or certificate. */
  text: string;
  contentType?: string;
  /** Set when the secret backs a certificate. */
  certificateBacked: boolean;
}

export interface VersionInfo {
  version: string;
  createdOn: number;
  enabled: boolean;
}

/** Fetch one version (empty: the current one) of an object, in the form the Azure provider writes. */
export async function fetchRaw(clients: VaultClients, type: ObjectType, name: string, version: string, abortSignal: AbortSignal): Promise<RawObject> {
  switch (type) {
    case 'secret': {
      const secret = await clients.secrets.getSecret(name, { version: version || undefined, abortSignal });
      if (secret.value === undefined) throw internal('the response has no value');
      return { version: secret.properties.version ?? '', text: secret.value, contentType: secret.properties.contentType, certificateBacked: !!secret.properties.certificateKeyId };
    }
    case 'key': {
      const key = await (await clients.keys()).getKey(name, { version: version || undefined, abortSignal });
      const jwk = key.key;
      if (!jwk?.kty) throw internal('the response has no key');
      const b64 = (bytes: Uint8Array | undefined): string | undefined => (bytes ? Buffer.from(bytes).toString('base64url') : undefined);
      let pem: string;
      if (jwk.kty === 'RSA' || jwk.kty === 'RSA-HSM') pem = publicKeyPemFromJwk({ kty: 'RSA', n: b64(jwk.n), e: b64(jwk.e) });
      else if (jwk.kty === 'EC' || jwk.kty === 'EC-HSM') {
        if (jwk.crv !== 'P-256' && jwk.crv !== 'P-384' && jwk.crv !== 'P-521') throw invalidArgument(`key curve ${jwk.crv ?? '(none)'} is not supported (P-256, P-384, P-521)`);
        pem = publicKeyPemFromJwk({ kty: 'EC', crv: jwk.crv, x: b64(jwk.x), y: b64(jwk.y) });
      } else throw invalidArgument(`key type ${jwk.kty} is not supported (RSA, EC)`);
      return { version: key.properties.version ?? '', text: pem, certificateBacked: false };
    }
    case 'cert': {
      const certificates = await clients.certificates();
      const cert = version ? await certificates.getCertificateVersion(name, version, { abortSignal }) : await certificates.getCertificate(name, { abortSignal });
      if (!cert.cer) throw internal('the response has no certificate');
      return { version: cert.properties.version ?? '', text: derToPem('CERTIFICATE', cert.cer), certificateBacked: false };
    }
  }
}

/**
 * Versions one listing may hold. The listing's pages are the vault's to write: a hostile origin
 * answering every `nextLink` with another 600 KB page of 2,000 versions grew the driver's heap to
 * 4 GiB within a publish (GC then starved the event loop, so not even the deadline fired). Years
 * of daily rotation stay far below this.
 */
export const MAX_LISTED_VERSIONS = 10_000;
/** Key Vault's version ids are 32 hex digits; the class's objectVersion allows the same shape. */
const VERSION_ID = /^[A-Za-z0-9]{1,64}$/;

/** Every version of an object, newest first by creation date. */
export async function listVersions(clients: VaultClients, type: ObjectType, name: string, abortSignal: AbortSignal): Promise<VersionInfo[]> {
  const pages =
    type === 'secret'
      ? clients.secrets.listPropertiesOfSecretVersions(name, { abortSignal })
      : type === 'key'
        ? (await clients.keys()).listPropertiesOfKeyVersions(name, { abortSignal })
        : (await clients.certificates()).listPropertiesOfCertificateVersions(name, { abortSignal });
  const versions: VersionInfo[] = [];
  for await (const p of pages) {
    if (abortSignal.aborted) throw abortSignal.reason;
    if (!p.version) continue;
    if (!VERSION_ID.test(p.version)) throw internal(`the version list of ${type} ${JSON.stringify(name)} holds an id that is not a Key Vault version id`);
    if (versions.length >= MAX_LISTED_VERSIONS) throw resourceExhausted(`${type} ${JSON.stringify(name)} has more than ${MAX_LISTED_VERSIONS} versions; podvault lists at most that many for objectVersionHistory`);
    versions.push({ version: p.version, createdOn: p.createdOn?.getTime() ?? 0, enabled: p.enabled !== false });
  }
  return versions.sort((a, b) => b.createdOn - a.createdOn);
}

/**
 * The file bytes for an object, as the Azure provider writes them:
 *   - a secret backing a certificate (content type application/x-pkcs12) becomes PEM: the private
 *     key (PKCS#8) then the certificates leaf → root; with objectFormat pfx the stored base64 PFX
 *     is kept (and objectEncoding base64 then writes the binary PFX);
 *   - application/x-pem-file is written as stored;
 *   - then objectEncoding (secrets only) decodes hex or base64 text.
 * The PKCS#12 conversion runs on the converter's worker thread (`src/untrusted/`): the vault
 * chooses the bundle, and with it how long opening it takes. `constructPEMChain: false`
 * (`--construct-pem-chain=false`) keeps the bundle's certificate order.
 */
export async function formatObject(raw: RawObject, object: KeyVaultObject, options: { constructPEMChain?: boolean } = {}): Promise<Buffer> {
  let text = raw.text;
  if (object.objectType === 'secret' && raw.certificateBacked) {
    if (raw.contentType === 'application/x-pkcs12') {
      if (object.objectFormat !== 'pfx') {
        try {
          text = await pkcs12Converter.convert(Buffer.from(raw.text, 'base64'), '', { orderChain: options.constructPEMChain ?? true });
        } catch (err) {
          throw pkcs12Failure(err, 'the certificate-backed secret', 'invalid-argument');
        }
      }
    } else if (raw.contentType !== 'application/x-pem-file') {
      throw invalidArgument(`unknown content type ${JSON.stringify(raw.contentType ?? '')} for a certificate-backed secret`);
    }
  }
  if (object.objectType !== 'secret') return Buffer.from(text, 'utf8');
  switch (object.objectEncoding) {
    case 'utf-8':
      return Buffer.from(text, 'utf8');
    case 'hex':
      if (!/^([0-9A-Fa-f]{2})*$/.test(text)) throw invalidArgument('objectEncoding hex, but the stored value is not hex');
      return Buffer.from(text, 'hex');
    case 'base64':
      // Trailing whitespace trimmed first: with `\s*$` in the pattern, a value of many newlines
      // then one stray byte took quadratic time to refuse (40 KB: 0.8 s on the serving thread).
      if (!/^[A-Za-z0-9+/\r\n]*={0,2}$/.test(text.trimEnd())) throw invalidArgument('objectEncoding base64, but the stored value is not base64');
      return Buffer.from(text, 'base64');
  }
}
