import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import type { JsonWebKey } from 'node:crypto';
import { createRequire } from 'node:module';
import type forgeType from 'node-forge';

/** node-forge (~9 MiB resident) is loaded on the first PKCS#12 conversion only. */
const loadForge = (() => {
  let forge: typeof forgeType | undefined;
  return (): typeof forgeType => (forge ??= createRequire(import.meta.url)('node-forge') as typeof forgeType);
})();

/** DER → PEM with 64-character lines, byte for byte what Go's pem.EncodeToMemory writes. */
export function derToPem(label: string, der: Uint8Array): string {
  const body = Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`;
}

/** The DER bodies of the blocks of one label in a PEM text, in order. */
export function pemBlocks(pem: string, label: string): Buffer[] {
  const re = new RegExp(`-----BEGIN ${label}-----([A-Za-z0-9+/=\\s]+?)-----END ${label}-----`, 'g');
  return [...pem.matchAll(re)].map((m) => Buffer.from((m[1] ?? '').replace(/\s+/g, ''), 'base64'));
}

/**
 * Certificates ordered leaf → intermediates → root, the order TLS servers and clients expect and
 * the Azure provider writes: the leaf is the certificate that issued none of the others, then each
 * certificate's issuer follows it. Certificates outside the chain keep their order at the end.
 */
export function orderChain(ders: readonly Buffer[]): Buffer[] {
  const certs = ders.map((der) => ({ der, x509: new X509Certificate(der) }));
  const issuerOf = (c: (typeof certs)[number]) => certs.find((o) => o !== c && c.x509.checkIssued(o.x509) && c.x509.verify(o.x509.publicKey));
  const issuers = new Set(certs.map(issuerOf).filter((c) => c !== undefined));
  const leaf = certs.find((c) => !issuers.has(c)) ?? certs[0];
  const ordered: typeof certs = [];
  for (let c = leaf; c && !ordered.includes(c); c = issuerOf(c)) ordered.push(c);
  return [...ordered, ...certs.filter((c) => !ordered.includes(c))].map((c) => c.der);
}

const KEY_BAG = '1.2.840.113549.1.12.10.1.1';
const SHROUDED_KEY_BAG = '1.2.840.113549.1.12.10.1.2';
const CERT_BAG = '1.2.840.113549.1.12.10.1.3';

/**
 * A PKCS#12 (PFX) bundle as PEM, the way the Azure provider converts a certificate-backed secret:
 * the private key as PKCS#8 (`PRIVATE KEY`, RSA or EC) first, then the certificates ordered leaf →
 * intermediates → root.
 */
export function pkcs12ToPem(pfx: Buffer, password = ''): string {
  const forge = loadForge();
  const p12 = forge.pkcs12.pkcs12FromAsn1(forge.asn1.fromDer(forge.util.createBuffer(pfx.toString('binary'))), false, password);
  const bags = (oid: string): forgeType.pkcs12.Bag[] => p12.getBags({ bagType: oid })[oid] ?? [];
  const keys = [...bags(SHROUDED_KEY_BAG), ...bags(KEY_BAG)].map((bag) => {
    // forge parses RSA keys; for others (EC) it keeps the decrypted PrivateKeyInfo as ASN.1.
    const info = bag.key ? forge.pki.wrapRsaPrivateKey(forge.pki.privateKeyToAsn1(bag.key)) : bag.asn1;
    const der = Buffer.from(forge.asn1.toDer(info).getBytes(), 'binary');
    return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }).export({ type: 'pkcs8', format: 'pem' }).toString();
  });
  if (keys.length === 0) throw new Error('the PFX holds no private key');
  const certs = bags(CERT_BAG)
    .map((bag) => (bag.cert ? forge.asn1.toDer(forge.pki.certificateToAsn1(bag.cert)) : bag.asn1 ? forge.asn1.toDer(bag.asn1) : undefined))
    .filter((b): b is forgeType.util.ByteStringBuffer => b !== undefined)
    .map((b) => Buffer.from(b.getBytes(), 'binary'));
  if (certs.length === 0) throw new Error('the PFX holds no certificate');
  return keys.join('') + orderChain(certs).map((der) => derToPem('CERTIFICATE', der)).join('');
}

/** A JSON Web Key's public part as a PKIX `PUBLIC KEY` PEM (RSA, or EC P-256/384/521). */
export function publicKeyPemFromJwk(jwk: JsonWebKey): string {
  return createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'pem' }).toString();
}
