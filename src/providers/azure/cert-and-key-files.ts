import { derToPem } from '../../util/pem.js';

/** The suffixes of the extra files, as the Azure provider names them (`<file>.crt`, `<file>.key`). */
export const CERT_FILE_SUFFIX = '.crt';
export const KEY_FILE_SUFFIX = '.key';

/**
 * `--write-cert-and-key-in-separate-files`: the PEM of a certificate-backed secret split into its
 * certificates (every `CERTIFICATE` block, in the file's order) and its private key (every other
 * block), each block rebuilt as Go's pem.EncodeToMemory writes it, as the Azure provider's
 * splitCertAndKey does. Either part may be empty (a secret holding only a certificate). The
 * pattern is linear: a block body cannot hold `-`, so each attempt stops at the next dash.
 */
export function splitCertAndKey(pem: string): { cert: string; key: string } {
  const re = /-----BEGIN ([A-Z0-9 ]{1,40})-----([A-Za-z0-9+/=\s]*)-----END \1-----/g;
  let cert = '';
  let key = '';
  for (const m of pem.matchAll(re)) {
    const label = m[1] ?? '';
    const block = derToPem(label, Buffer.from((m[2] ?? '').replace(/\s+/g, ''), 'base64'));
    if (label === 'CERTIFICATE') cert += block;
    else key += block;
  }
  return { cert, key };
}
