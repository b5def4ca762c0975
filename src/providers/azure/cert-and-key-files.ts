import { labelledPemBlocks } from '../../util/pem.js';

/** The suffixes of the extra files, as the Azure provider names them (`<file>.crt`, `<file>.key`). */
export const CERT_FILE_SUFFIX = '.crt';
export const KEY_FILE_SUFFIX = '.key';

/**
 * `--write-cert-and-key-in-separate-files`: the PEM of a certificate-backed secret split into its
 * certificates (every `CERTIFICATE` block, in the file's order) and its private key (every other
 * block), each block rebuilt as Go's pem.EncodeToMemory writes it (`labelledPemBlocks`, linear), as the Azure
 * provider's splitCertAndKey does. Either part may be empty (a secret holding only a certificate).
 */
export function splitCertAndKey(pem: string): { cert: string; key: string } {
  let cert = '';
  let key = '';
  for (const block of labelledPemBlocks(pem)) {
    if (block.label === 'CERTIFICATE') cert += block.pem;
    else key += block.pem;
  }
  return { cert, key };
}
