import { createHash } from 'node:crypto';
import { z } from 'zod';

/**
 * The published resource: one `VaultObjectVersions` object per vault, in the watcher's namespace,
 * status only. This file is the contract between `podvault version-watch` (the writer) and the
 * drivers (the readers, issue 12 item 2); docs/rotation.md describes it for people.
 */
export const VOV_GROUP = 'podvault.dev';
export const VOV_VERSION = 'v1alpha1';
export const VOV_PLURAL = 'vaultobjectversions';
export const VOV_KIND = 'VaultObjectVersions';
export const VOV_API_VERSION = `${VOV_GROUP}/${VOV_VERSION}`;
/** Where the watcher writes them and the drivers read them, unless both are told otherwise. */
export const DEFAULT_VERSIONS_NAMESPACE = 'podvault';

/** The three collections of a vault, as Key Vault's REST paths name them. */
export const COLLECTIONS = ['secrets', 'keys', 'certificates'] as const;
export type Collection = (typeof COLLECTIONS)[number];

/** A class's `objectType` to the collection its version lives in. */
export function collectionOf(objectType: 'secret' | 'key' | 'cert'): Collection {
  return objectType === 'secret' ? 'secrets' : objectType === 'key' ? 'keys' : 'certificates';
}

/**
 * Nodes fall back to periodic refetch when the object's `observedAt` is older than this many
 * intervals (or when an object they need is absent or listed in `unavailable`).
 */
export const STALE_AFTER_INTERVALS = 3;

/**
 * Most bytes of one object's JSON the watcher writes. The API server refuses requests over
 * ~1.5 MiB (etcd's limit); past this the watcher writes no versions for the vault, raises an
 * event and logs, and the object goes stale, so nodes fall back for that vault.
 */
export const MAX_STATUS_BYTES = 1024 * 1024;

/**
 * The object name of a vault: its host (and port when not 443), lower-cased, characters outside
 * a DNS subdomain replaced by `-`, cut to 200, then `-` and 10 hex of the SHA-256 of the origin, so
 * two origins that map to the same text still get two names. Nodes compute the same name from a
 * class's vault URL and watch only that object.
 */
export function versionsObjectName(vaultUrl: string): string {
  const origin = new URL(vaultUrl).origin;
  const hostPort = origin.replace(/^https:\/\//, '');
  const text = hostPort
    .toLowerCase()
    .replace(/[^a-z0-9.-]+/g, '-')
    .replace(/^[^a-z0-9]+/, '')
    .slice(0, 200)
    .replace(/[^a-z0-9]+$/, '');
  const digest = createHash('sha256').update(origin).digest('hex').slice(0, 10);
  return `${text === '' ? 'vault' : text}-${digest}`;
}

/** One object's current version: the 32-hex id and when the watcher first saw it current (RFC 3339). */
export const versionEntrySchema = z.object({ version: z.string().max(64), since: z.string() });
export type VersionEntry = z.infer<typeof versionEntrySchema>;

/** Why the watcher could not learn an object's version this poll: nodes refetch it periodically. */
export const UNAVAILABLE_REASONS = ['Forbidden', 'NotFound', 'Throttled', 'Ambiguous', 'Error'] as const;
export type UnavailableReason = (typeof UNAVAILABLE_REASONS)[number];

const perCollection = <T extends z.ZodType>(entry: T) => z.object({ secrets: z.record(z.string(), entry).default({}), keys: z.record(z.string(), entry).default({}), certificates: z.record(z.string(), entry).default({}) });

/**
 * `status` of a VaultObjectVersions object. Names and version ids only: never a value, never a
 * token, never anything read from a class but the object names.
 */
export const versionsStatusSchema = z.object({
  /** The vault origin, `https://host[:port]`. */
  vaultUri: z.string(),
  /** The watcher's poll interval in seconds: nodes judge staleness against it. */
  intervalSeconds: z.number().positive(),
  /** When the last poll of this vault completed (RFC 3339): the heartbeat. */
  observedAt: z.string(),
  /** The identity of the watcher replica (the Lease holder) that wrote it. */
  writer: z.string().optional(),
  /** Current versions of the objects the cluster's classes name unpinned, by collection and name. */
  versions: perCollection(versionEntrySchema),
  /** Objects whose version the last poll could not learn, with why. */
  unavailable: perCollection(z.enum(UNAVAILABLE_REASONS)),
});
export type VersionsStatus = z.infer<typeof versionsStatusSchema>;

/**
 * Whether a node may trust `status` at `now` (epoch ms): written within STALE_AFTER_INTERVALS
 * intervals. Nodes use this; the watcher's tests check the rule.
 */
export function isFresh(status: Pick<VersionsStatus, 'observedAt' | 'intervalSeconds'>, now = Date.now()): boolean {
  const at = Date.parse(status.observedAt);
  return Number.isFinite(at) && now - at <= STALE_AFTER_INTERVALS * status.intervalSeconds * 1000;
}
