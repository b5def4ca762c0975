/**
 * `node --max-semi-space-size=1 dist/bench/pkcs12-memory.js`: what opening PKCS#12 bundles on
 * the converter's worker thread costs in resident memory, against the driver's module graph
 * loaded and no worker yet, and what node-forge on the serving thread used to cost. Run each
 * mode in its own process (BENCH_MODE=worker | main-thread); prints one JSON line.
 */
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type forgeType from 'node-forge';

const mib = (bytes: number): number => Math.round((bytes / 2 ** 20) * 10) / 10;
const settle = async (): Promise<number> => {
  for (let i = 0; i < 3; i++) {
    (globalThis as { gc?: () => void }).gc?.();
    await new Promise((r) => setTimeout(r, 200));
  }
  return process.memoryUsage.rss();
};

/** Made in a child process, so node-forge is not in this one's memory before it is measured. */
function bundle(): Buffer {
  const forge = createRequire(import.meta.url)('node-forge') as typeof forgeType;
  const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const key = forge.pki.privateKeyFromPem(pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(pair.publicKey.export({ type: 'spki', format: 'pem' }).toString());
  cert.serialNumber = '01';
  cert.validity.notBefore = new Date();
  cert.validity.notAfter = new Date(Date.now() + 86_400_000);
  cert.setSubject([{ name: 'commonName', value: 'bench' }]);
  cert.setIssuer([{ name: 'commonName', value: 'bench' }]);
  cert.sign(key, forge.md.sha256.create());
  return Buffer.from(forge.asn1.toDer(forge.pkcs12.toPkcs12Asn1(key, [cert], '', { algorithm: '3des' })).getBytes(), 'binary');
}

const mode = process.env.BENCH_MODE ?? 'worker';
if (mode === 'bundle') {
  process.stdout.write(bundle().toString('base64'));
  process.exit(0);
}
const pfx = Buffer.from(execFileSync(process.execPath, [fileURLToPath(import.meta.url)], { env: { ...process.env, BENCH_MODE: 'bundle' }, encoding: 'utf8' }), 'base64');
await import('../src/driver/server.js');
const before = await settle();
if (mode === 'worker') {
  const { pkcs12Converter } = await import('../src/untrusted/pkcs12-converter.js');
  for (let i = 0; i < 50; i++) await pkcs12Converter.convert(pfx, '');
  const during = await settle();
  await pkcs12Converter.close(); // what the idle timeout does after a minute
  const closed = await settle();
  console.log(JSON.stringify({ mode, rssBeforeMiB: mib(before), rssWithWorkerMiB: mib(during), rssAfterWorkerEndsMiB: mib(closed) }));
  process.exit(0);
} else {
  const { pkcs12ToPem } = await import('../src/untrusted/pkcs12-to-pem.js');
  for (let i = 0; i < 50; i++) pkcs12ToPem(pfx, '', 100_000);
}
const after = await settle();
console.log(JSON.stringify({ mode, rssBeforeMiB: mib(before), rssAfter50MiB: mib(after), deltaMiB: mib(after - before) }));
process.exit(0);
