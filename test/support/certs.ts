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

type Kdf = (...args: unknown[]) => unknown;

/**
 * A PFX that declares `iterations` for its MAC and its key bag's encryption, built in moments:
 * forge's key derivations are swapped for one-iteration ones while it is written, so the bundle
 * does not open (its MAC and key are wrong) but a reader runs every declared iteration before
 * finding out. `mac: false` leaves out MacData, so the key bag's derivation is the first one;
 * `3des` encrypts the key bag with PKCS#12 PBE, `aes256` with PBES2 (PBKDF2).
 */
export function pfxDeclaringIterations(key: forge.pki.rsa.PrivateKey, certs: readonly Issued[], options: { iterations: number; algorithm: '3des' | 'aes256'; mac: boolean }): Buffer {
  const targets: [Record<string, Kdf>, string, number][] = [
    [forge.pkcs12 as unknown as Record<string, Kdf>, 'generateKey', 3],
    [(forge.pki as unknown as { pbe: Record<string, Kdf> }).pbe, 'generatePkcs12Key', 3],
    [forge.pkcs5 as unknown as Record<string, Kdf>, 'pbkdf2', 2],
  ];
  const saved = targets.map(([obj, name]) => obj[name]);
  targets.forEach(([obj, name, at], i) => {
    const original = saved[i]!;
    obj[name] = (...args: unknown[]) => original(...args.map((a, j) => (j === at ? 1 : a)));
  });
  try {
    const asn1 = forge.pkcs12.toPkcs12Asn1(key, certs.map((c) => c.cert), '', { algorithm: options.algorithm, count: options.iterations, useMac: options.mac });
    return Buffer.from(forge.asn1.toDer(asn1).getBytes(), 'binary');
  } finally {
    targets.forEach(([obj, name], i) => (obj[name] = saved[i]!));
  }
}

/**
 * A PFX with "no password" encoded as Windows/CNG and Key Vault's own exports encode it: zero
 * bytes into the PKCS#12 key derivation, not forge's and OpenSSL's BMPString of "" (two NUL
 * bytes). forge derives zero bytes from a null password, so its two PKCS#12 derivations get null
 * while the bundle is written: the MAC and the 3DES-encrypted key bag both use that encoding.
 */
export function pfxWithEmptyBytesPassword(key: forge.pki.rsa.PrivateKey, certs: readonly Issued[]): Buffer {
  const targets: [Record<string, Kdf>, string][] = [
    [forge.pkcs12 as unknown as Record<string, Kdf>, 'generateKey'],
    [(forge.pki as unknown as { pbe: Record<string, Kdf> }).pbe, 'generatePkcs12Key'],
  ];
  const saved = targets.map(([obj, name]) => obj[name]);
  targets.forEach(([obj, name], i) => {
    const original = saved[i]!;
    obj[name] = (password: unknown, ...rest: unknown[]) => original(password === '' ? null : password, ...rest);
  });
  try {
    const asn1 = forge.pkcs12.toPkcs12Asn1(key, certs.map((c) => c.cert), '', { algorithm: '3des' });
    return Buffer.from(forge.asn1.toDer(asn1).getBytes(), 'binary');
  } finally {
    targets.forEach(([obj, name], i) => (obj[name] = saved[i]!));
  }
}
