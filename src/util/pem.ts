import { createPublicKey, X509Certificate } from 'node:crypto';
import type { JsonWebKey } from 'node:crypto';

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
 * certificate's issuer follows it. When that chain does not take in every certificate (a missing
 * intermediate, an unrelated certificate), the bundle's own order is kept, as upstream does: a
 * reordering that cannot be completed would only move certificates away from where the bundle's
 * author put them.
 */
export function orderChain(ders: readonly Buffer[]): Buffer[] {
  const certs = ders.map((der) => ({ der, x509: new X509Certificate(der) }));
  const issuerOf = (c: (typeof certs)[number]) => certs.find((o) => o !== c && c.x509.checkIssued(o.x509) && c.x509.verify(o.x509.publicKey));
  const issuers = new Set(certs.map(issuerOf).filter((c) => c !== undefined));
  const leaf = certs.find((c) => !issuers.has(c)) ?? certs[0];
  const ordered: typeof certs = [];
  for (let c = leaf; c && !ordered.includes(c); c = issuerOf(c)) ordered.push(c);
  return ordered.length === certs.length ? ordered.map((c) => c.der) : [...ders];
}

/** A JSON Web Key's public part as a PKIX `PUBLIC KEY` PEM (RSA, or EC P-256/384/521). */
export function publicKeyPemFromJwk(jwk: JsonWebKey): string {
  return createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'pem' }).toString();
}

/**
 * The PEM blocks of a text, in their order, each rebuilt as `derToPem` writes it; anything
 * between or around them (and any block with headers) is dropped. Tenant-supplied PEM goes
 * through this before a library reads it: @azure/identity finds certificates with
 * `/(-+BEGIN CERTIFICATE-+).../g`, quadratic on a run of dashes (200 K dashes in a type-2
 * identity's Secret held the serving thread 13 s). This pattern is linear: a body cannot hold
 * `-`, so each attempt stops at the next dash.
 */
export function canonicalPem(text: string): string {
  return labelledPemBlocks(text).map((b) => b.pem).join('');
}

/** The PEM blocks of a text, in their order, each with its label and rebuilt as in `canonicalPem`. */
export function labelledPemBlocks(text: string): { label: string; pem: string }[] {
  const re = /-----BEGIN ([A-Z0-9 ]{1,40})-----([A-Za-z0-9+/=\s]*)-----END \1-----/g;
  return [...text.matchAll(re)].map((m) => {
    const label = m[1] ?? '';
    return { label, pem: derToPem(label, Buffer.from((m[2] ?? '').replace(/\s+/g, ''), 'base64')) };
  });
}
