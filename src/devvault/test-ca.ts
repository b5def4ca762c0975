import { generateKeyPairSync, randomBytes } from 'node:crypto';
import forge from 'node-forge';

export interface IssuedCert {
  certPem: string;
  keyPem: string;
}

export interface TestCa extends IssuedCert {
  /** Issue a TLS server certificate for the given DNS names and IP addresses. */
  issueServerCert(dnsNames: readonly string[], ipAddresses: readonly string[]): IssuedCert;
  /** The certificate and key as Key Vault keeps a certificate's secret: a PFX with an empty password. */
  toPfx(issued: IssuedCert): Buffer;
}

/** RSA keys come from Node's crypto (fast, native); node-forge only builds and signs X.509. */
function rsaKeyPair(): { privatePem: string; publicPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

function newCertificate(publicPem: string, days: number): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicPem);
  cert.serialNumber = `01${randomBytes(15).toString('hex')}`;
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + days * 86_400_000);
  return cert;
}

/** A throwaway certificate authority, made fresh for each dev-vault (never for production). */
export function createTestCa(commonName = 'podvault dev-vault test CA'): TestCa {
  const caKeys = rsaKeyPair();
  const caKey = forge.pki.privateKeyFromPem(caKeys.privatePem);
  const caCert = newCertificate(caKeys.publicPem, 30);
  const caSubject = [{ name: 'commonName', value: commonName }];
  caCert.setSubject(caSubject);
  caCert.setIssuer(caSubject);
  caCert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  caCert.sign(caKey, forge.md.sha256.create());

  return {
    certPem: forge.pki.certificateToPem(caCert),
    keyPem: caKeys.privatePem,
    issueServerCert(dnsNames, ipAddresses) {
      const keys = rsaKeyPair();
      const cert = newCertificate(keys.publicPem, 30);
      cert.setSubject([{ name: 'commonName', value: dnsNames[0] ?? ipAddresses[0] ?? 'dev-vault' }]);
      cert.setIssuer(caCert.subject.attributes);
      cert.setExtensions([
        { name: 'basicConstraints', cA: false },
        { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
        { name: 'extKeyUsage', serverAuth: true },
        {
          name: 'subjectAltName',
          altNames: [...dnsNames.map((value) => ({ type: 2, value })), ...ipAddresses.map((ip) => ({ type: 7, ip }))],
        },
      ]);
      cert.sign(caKey, forge.md.sha256.create());
      return { certPem: forge.pki.certificateToPem(cert), keyPem: keys.privatePem };
    },
    toPfx(issued) {
      const asn1 = forge.pkcs12.toPkcs12Asn1(forge.pki.privateKeyFromPem(issued.keyPem), [forge.pki.certificateFromPem(issued.certPem), caCert], '', { algorithm: '3des' });
      return Buffer.from(forge.asn1.toDer(asn1).getBytes(), 'binary');
    },
  };
}
