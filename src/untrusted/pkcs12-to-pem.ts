import { createPrivateKey } from 'node:crypto';
import { createRequire } from 'node:module';
import type forgeType from 'node-forge';
import { derToPem, orderChain } from '../util/pem.js';

/**
 * PKCS#12 → PEM with node-forge. Runs only inside the converter's worker thread
 * (`pkcs12-worker.ts`): opening a bundle runs its key derivations, whose iteration counts the
 * bundle itself chooses, so on the serving thread one crafted PFX stalled every RPC of the node.
 */

/** Why a bundle was refused, in words a user can act on (never the bundle's bytes). */
export class Pkcs12Refusal extends Error {
  override readonly name = 'Pkcs12Refusal';
}

const KEY_BAG = '1.2.840.113549.1.12.10.1.1';
const SHROUDED_KEY_BAG = '1.2.840.113549.1.12.10.1.2';
const CERT_BAG = '1.2.840.113549.1.12.10.1.3';

interface Forge {
  forge: typeof forgeType;
  /** The iteration cap the next conversion enforces; set per call. */
  limit: { maxIterations: number };
}

/**
 * node-forge with every key derivation it runs while opening a PKCS#12 guarded by an iteration
 * cap, checked before the first iteration. The three entry points (node-forge 1.x):
 *   - `pkcs12.generateKey`: the MacData key (pkcs12.js binds it at load, so it is patched apart);
 *   - `pki.pbe.generatePkcs12Key`: PKCS#12 PBE (pbeWithSHAAnd3-KeyTripleDES-CBC, RC2, …) key and IV;
 *   - `pkcs5.pbkdf2`: PBES2 (PBKDF2 + AES), also reachable as `forge.pbkdf2`.
 * forge reads counts of any length (`getInt` of all their bits, `parseInt` of their hex), so a
 * count that is not a safe integer in [1, cap] is refused too.
 */
const loadForge = (() => {
  let loaded: Forge | undefined;
  return (): Forge => {
    if (loaded) return loaded;
    const forge = createRequire(import.meta.url)('node-forge') as typeof forgeType;
    const limit = { maxIterations: 0 };
    const guard = (what: string, iterations: unknown): void => {
      if (typeof iterations !== 'number' || !Number.isSafeInteger(iterations) || iterations < 1 || iterations > limit.maxIterations) {
        const count = typeof iterations === 'number' && Number.isFinite(iterations) ? String(iterations) : 'an unreadable number of';
        throw new Pkcs12Refusal(`its ${what} asks for ${count} iterations, more than the ${limit.maxIterations} this node allows (--pkcs12-max-iterations)`);
      }
    };
    type Fn = (...args: never[]) => unknown;
    const wrap = <T extends Fn>(fn: T, what: string, iterationsArg: number): T =>
      ((...args: Parameters<T>) => {
        guard(what, args[iterationsArg]);
        return fn(...args);
      }) as T;
    const pkcs12 = forge.pkcs12 as unknown as { generateKey: Fn };
    const pbe = (forge.pki as unknown as { pbe: { generatePkcs12Key: Fn } }).pbe;
    const pkcs5 = forge.pkcs5 as unknown as { pbkdf2: Fn };
    pkcs12.generateKey = wrap(pkcs12.generateKey, 'MAC key derivation', 3);
    pbe.generatePkcs12Key = wrap(pbe.generatePkcs12Key, 'PKCS#12 PBE key derivation', 3);
    // PBES2 reads the password as UTF-8, where "" is zero bytes either way; forge's HMAC would
    // take a null key as "keep the previous key", so the empty byte-string retry passes "" here.
    const pbkdf2 = wrap(pkcs5.pbkdf2, 'PBKDF2 key derivation', 2);
    pkcs5.pbkdf2 = ((password: unknown, ...rest: never[]) => pbkdf2(...([password ?? '', ...rest] as never[]))) as Fn;
    (forge as unknown as { pbkdf2: Fn }).pbkdf2 = pkcs5.pbkdf2;
    return (loaded = { forge, limit });
  };
})();

/** Load node-forge now, so a worker's first bundle is not charged for it. */
export function loadConverter(): void {
  loadForge();
}

/**
 * A PKCS#12 (PFX) bundle as PEM, the way the Azure provider converts a certificate-backed secret:
 * the private key as PKCS#8 (`PRIVATE KEY`, RSA or EC) first, then the certificates ordered leaf →
 * intermediates → root when they link up, else in the bundle's order (`orderChain`); with
 * `constructChain` false (`--construct-pem-chain=false`) always in the bundle's order. Throws `Pkcs12Refusal` for a bundle over the iteration cap or without a
 * key or certificate; any other error means it did not open (not PKCS#12, wrong password).
 */
export function pkcs12ToPem(pfx: Buffer, password: string, maxIterations: number, constructChain = true): string {
  const { forge, limit } = loadForge();
  limit.maxIterations = maxIterations;
  const open = (pass: string | null): forgeType.pkcs12.Pkcs12Pfx =>
    forge.pkcs12.pkcs12FromAsn1(forge.asn1.fromDer(forge.util.createBuffer(pfx.toString('binary'))), false, pass as string);
  let p12: forgeType.pkcs12.Pkcs12Pfx;
  try {
    p12 = open(password);
  } catch (err) {
    // "No password" has two encodings for PKCS#12's key derivation: the BMPString of "" (its
    // two-byte NUL terminator, what forge and OpenSSL write) and zero bytes (what Windows/CNG and
    // Key Vault's own exports write). Go's pkcs12, which the Azure provider uses, tries both; so
    // do we, for the MAC and the bags alike (forge derives zero bytes from a null password).
    if (password !== '' || err instanceof Pkcs12Refusal) throw err;
    p12 = open(null);
  }
  const bags = (oid: string): forgeType.pkcs12.Bag[] => p12.getBags({ bagType: oid })[oid] ?? [];
  const keys = [...bags(SHROUDED_KEY_BAG), ...bags(KEY_BAG)].map((bag) => {
    // forge parses RSA keys; for others (EC) it keeps the decrypted PrivateKeyInfo as ASN.1.
    const info = bag.key ? forge.pki.wrapRsaPrivateKey(forge.pki.privateKeyToAsn1(bag.key)) : bag.asn1;
    const der = Buffer.from(forge.asn1.toDer(info).getBytes(), 'binary');
    return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }).export({ type: 'pkcs8', format: 'pem' }).toString();
  });
  if (keys.length === 0) throw new Pkcs12Refusal('it holds no private key');
  const certs = bags(CERT_BAG)
    .map((bag) => (bag.cert ? forge.asn1.toDer(forge.pki.certificateToAsn1(bag.cert)) : bag.asn1 ? forge.asn1.toDer(bag.asn1) : undefined))
    .filter((b): b is forgeType.util.ByteStringBuffer => b !== undefined)
    .map((b) => Buffer.from(b.getBytes(), 'binary'));
  if (certs.length === 0) throw new Pkcs12Refusal('it holds no certificate');
  return keys.join('') + (constructChain ? orderChain(certs) : certs).map((der) => derToPem('CERTIFICATE', der)).join('');
}
