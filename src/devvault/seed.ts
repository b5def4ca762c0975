import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { describeZodError } from '../util/zod-error.js';

/** The Key Vault RBAC roles dev-vault knows for key operations (see `KEY_ROLE_ACTIONS`). */
export const CRYPTO_ROLES = ['crypto-service-encryption-user', 'crypto-user', 'crypto-officer'] as const;
export type CryptoRole = (typeof CRYPTO_ROLES)[number];
export type KeyAction = 'get' | 'wrapKey' | 'unwrapKey' | 'encrypt' | 'decrypt' | 'rotate';

/**
 * What each role grants, as Azure's built-in roles do: Key Vault Crypto Service Encryption User
 * (keys/read, wrap, unwrap), Key Vault Crypto User (also encrypt, decrypt), Key Vault Crypto Officer
 * (every key action, rotate included).
 */
export const KEY_ROLE_ACTIONS: Record<CryptoRole, readonly KeyAction[]> = {
  'crypto-service-encryption-user': ['get', 'wrapKey', 'unwrapKey'],
  'crypto-user': ['get', 'wrapKey', 'unwrapKey', 'encrypt', 'decrypt'],
  'crypto-officer': ['get', 'wrapKey', 'unwrapKey', 'encrypt', 'decrypt', 'rotate'],
};

export const DEFAULT_TENANT_ID = '72f988bf-0000-4000-8000-00000000d3ff';

const versionSchema = z.object({
  value: z.string(),
  contentType: z.string().optional(),
  enabled: z.boolean().default(true),
});

const secretSchema = z
  .object({
    name: z.string().regex(/^[-A-Za-z0-9]{1,127}$/, 'must be 1-127 letters, digits or dashes'),
    value: z.string().optional(),
    contentType: z.string().optional(),
    enabled: z.boolean().default(true),
    /** Oldest first; the last one is the current version. */
    versions: z.array(versionSchema).optional(),
  })
  .refine((s) => (s.value === undefined) !== (s.versions === undefined), 'give exactly one of value or versions');

const clientSchema = z.object({
  clientId: z.string().min(1),
  /** Client-credentials secret (service principal). */
  clientSecret: z.string().min(1).optional(),
  /** PEM certificate whose key signs client assertions (service principal with certificate). */
  certificatePem: z.string().optional(),
  /** A managed identity: tokens through the IMDS endpoint, by client id or this resource id. */
  managedIdentity: z.boolean().default(false),
  resourceId: z.string().optional(),
  /** A federated credential (workload identity): tokens issued by `issuer` for `subject`, verified with `publicKeyPem`. */
  federated: z.object({ issuer: z.string(), subject: z.string(), publicKeyPem: z.string() }).optional(),
  /** AKS identity binding: the service accounts (`system:serviceaccount:<ns>:<name>`) the token proxy lets use this identity. */
  identityBinding: z.object({ subjects: z.array(z.string()) }).optional(),
  /**
   * Key Vault Reader over the whole vault: versions listings and the properties (and public parts)
   * of keys and certificates, never a secret's value (give `read: []` with it for a metadata-only
   * identity, such as the version watch's).
   */
  keyVaultReader: z.boolean().optional(),
  /** Globs over object names this identity may read; every object when absent. */
  read: z.array(z.string()).default(['*']),
  /**
   * Key Vault RBAC roles for key operations, each over globs of key names (none when absent: an
   * identity may read keys through `read` but use none). `crypto-service-encryption-user` may get,
   * wrapKey and unwrapKey; `crypto-user` may also encrypt and decrypt; `crypto-officer` may also rotate.
   */
  crypto: z.array(z.object({ role: z.enum(CRYPTO_ROLES), keys: z.array(z.string()).default(['*']) })).optional(),
});

/**
 * A key generated when dev-vault starts (only its public part is served, as Key Vault does; RSA
 * keys also serve wrapkey, unwrapkey, encrypt and decrypt with their private part).
 */
const keySchema = z.object({
  name: z.string().regex(/^[-A-Za-z0-9]{1,127}$/),
  kty: z.enum(['RSA', 'EC']).default('RSA'),
  crv: z.enum(['P-256', 'P-384', 'P-521']).default('P-256'),
  /** RSA modulus bits. */
  size: z.union([z.literal(2048), z.literal(3072), z.literal(4096)]).default(2048),
  /** Versions generated, oldest first (the last is current): a key that was already rotated. */
  versions: z.number().int().min(1).max(20).default(1),
});

/** A certificate issued by dev-vault's test CA when it starts, with its backing secret. */
const certificateSchema = z.object({
  name: z.string().regex(/^[-A-Za-z0-9]{1,127}$/),
  subject: z.string().default('app.example.test'),
  contentType: z.enum(['application/x-pkcs12', 'application/x-pem-file']).default('application/x-pkcs12'),
});

/** dev-vault's AKS token proxy: the cluster whose service-account tokens it accepts, and its TLS name. */
const tokenProxySchema = z.object({
  issuer: z.string().min(1),
  /** PEM public key the cluster signs service-account tokens with. */
  publicKeyPem: z.string().min(1),
  sniName: z.string().default('proxy.ests.aks.test'),
});

export const seedSchema = z.object({
  tenantId: z.string().default(DEFAULT_TENANT_ID),
  clients: z.array(clientSchema).default([]),
  secrets: z.array(secretSchema).default([]),
  keys: z.array(keySchema).default([]),
  certificates: z.array(certificateSchema).default([]),
  tokenProxy: tokenProxySchema.optional(),
});

export type Seed = z.infer<typeof seedSchema>;
export type SeedClient = z.infer<typeof clientSchema>;
export type TokenProxySeed = z.infer<typeof tokenProxySchema>;

export function parseSeed(text: string, origin: string): Seed {
  const parsed = seedSchema.safeParse(parseYaml(text) ?? {});
  if (!parsed.success) throw new Error(`${origin}: invalid dev-vault seed: ${describeZodError(parsed.error)}`);
  return parsed.data;
}

export async function loadSeedFile(path: string): Promise<Seed> {
  return parseSeed(await readFile(path, 'utf8'), path);
}

/** Deterministic 32-hex version ids, so the demo and tests can name versions. */
export function versionId(name: string, index: number): string {
  return createHash('sha256').update(`${name}#${index}`).digest('hex').slice(0, 32);
}
