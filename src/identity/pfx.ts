import forge from 'node-forge';

/**
 * A PKCS#12 (PFX) bundle as PEM: the private key (PKCS#8) followed by the certificates. Used for
 * AzureIdentity type 2 (its secret holds a PFX and its password), which the Azure SDK wants as PEM.
 */
const KEY_BAG = '1.2.840.113549.1.12.10.1.1';
const SHROUDED_KEY_BAG = '1.2.840.113549.1.12.10.1.2';
const CERT_BAG = '1.2.840.113549.1.12.10.1.3';

export function pfxToPem(pfx: Buffer, password: string): string {
  const asn1 = forge.asn1.fromDer(forge.util.createBuffer(pfx.toString('binary')));
  const p12 = forge.pkcs12.pkcs12FromAsn1(asn1, false, password);
  const bags = (oid: string): forge.pkcs12.Bag[] => p12.getBags({ bagType: oid })[oid] ?? [];
  const key = [...bags(SHROUDED_KEY_BAG), ...bags(KEY_BAG)].find((b) => b.key)?.key;
  const certBags = bags(CERT_BAG);
  if (!key) throw new Error('the PFX holds no private key');
  const keyPem = forge.pki.privateKeyInfoToPem(forge.pki.wrapRsaPrivateKey(forge.pki.privateKeyToAsn1(key)));
  const certs = certBags.map((b) => (b.cert ? forge.pki.certificateToPem(b.cert) : '')).join('');
  if (certs === '') throw new Error('the PFX holds no certificate');
  return `${keyPem}${certs}`;
}
