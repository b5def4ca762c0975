import { generateKeyPairSync, randomBytes } from 'node:crypto';
import forge from 'node-forge';

export interface Issued {
  cert: forge.pki.Certificate;
  key: forge.pki.rsa.PrivateKey;
  keyPem: string;
  der: Buffer;
}

function issue(commonName: string, issuer: Issued | undefined, ca: boolean): Issued {
  const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyPem = pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const key = forge.pki.privateKeyFromPem(keyPem) as forge.pki.rsa.PrivateKey;
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(pair.publicKey.export({ type: 'spki', format: 'pem' }).toString());
  cert.serialNumber = `01${randomBytes(8).toString('hex')}`;
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + 86_400_000);
  cert.setSubject([{ name: 'commonName', value: commonName }]);
  cert.setIssuer(issuer ? issuer.cert.subject.attributes : [{ name: 'commonName', value: commonName }]);
  cert.setExtensions([{ name: 'basicConstraints', cA: ca }, { name: 'subjectKeyIdentifier' }]);
  cert.sign(issuer ? issuer.key : key, forge.md.sha256.create());
  const der = Buffer.from(forge.asn1.toDer(forge.pki.certificateToAsn1(cert)).getBytes(), 'binary');
  return { cert, key, keyPem, der };
}

/** root CA → intermediate CA → leaf, RSA, made fresh by each test run. */
export function certificateChain(): { root: Issued; intermediate: Issued; leaf: Issued } {
  const root = issue('podvault test root', undefined, true);
  const intermediate = issue('podvault test intermediate', root, true);
  const leaf = issue('app.example.test', intermediate, false);
  return { root, intermediate, leaf };
}

/** A PFX with an empty password holding `key` and `certs` in the given (possibly scrambled) order. */
export function pfx(key: forge.pki.rsa.PrivateKey, certs: readonly Issued[]): Buffer {
  // Key Vault exports certificate PFX bundles encrypted with an empty password.
  const asn1 = forge.pkcs12.toPkcs12Asn1(key, certs.map((c) => c.cert), '', { algorithm: '3des' });
  return Buffer.from(forge.asn1.toDer(asn1).getBytes(), 'binary');
}
