import { generateKeyPairSync, randomBytes } from 'node:crypto';
import forge from 'node-forge';
import { startEtcd as startEtcdProcess } from '../../src/devvault/etcd-process.js';
import type { EtcdServer, EtcdTls } from '../../src/devvault/etcd-process.js';

export type { EtcdServer, EtcdTls } from '../../src/devvault/etcd-process.js';

/** Debian's etcd-server (`.ci/run` installs it); ETCD_BIN points elsewhere. */
export const ETCD_BIN = process.env.ETCD_BIN ?? '/usr/bin/etcd';

/** A real etcd from ETCD_BIN on loopback ports in a temp dir (src/devvault/etcd-process.ts). */
export function startEtcd(options: { tls?: EtcdTls } = {}): Promise<EtcdServer> {
  return startEtcdProcess({ bin: ETCD_BIN, ...options });
}

/**
 * A certificate signed by a test CA's key, for etcd's TLS: a client certificate (clientAuth), or,
 * with addresses, etcd's server certificate. That one needs clientAuth too, because with
 * --client-cert-auth etcd's own HTTP gateway connects to its gRPC port with it (without, /health
 * never answers). src/devvault/test-ca.ts issues server-only certificates, hence this.
 */
export function issueEtcdCert(ca: { certPem: string; keyPem: string }, commonName: string, serverIps: readonly string[] = []): { certPem: string; keyPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const caCert = forge.pki.certificateFromPem(ca.certPem);
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }).toString());
  cert.serialNumber = `01${randomBytes(15).toString('hex')}`;
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + 86_400_000);
  cert.setSubject([{ name: 'commonName', value: commonName }]);
  cert.setIssuer(caCert.subject.attributes);
  const server = serverIps.length > 0;
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', clientAuth: true, serverAuth: server },
    ...(server ? [{ name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }, ...serverIps.map((ip) => ({ type: 7, ip }))] }] : []),
  ]);
  cert.sign(forge.pki.privateKeyFromPem(ca.keyPem), forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
}
