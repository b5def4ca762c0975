/**
 * `podvault etcd-audit`'s exit codes, for scripts and CI gates. When several apply, the lowest
 * of 2–4 wins (plaintext is the worst finding).
 */
export const EXIT_CODES = {
  /** Everything read is encrypted (and, with --expect-key-id, under that KMS v2 key). */
  clean: 0,
  /** The audit could not run: a bad flag, an unreadable TLS file, etcd unreachable or refusing. */
  error: 1,
  /** At least one object is stored in plaintext (identity provider: protobuf or JSON). */
  plaintext: 2,
  /** At least one value has no format the audit knows (or a damaged KMS v2 envelope). */
  unknown: 3,
  /** With --expect-key-id: at least one object is encrypted, but not by KMS v2 under that key id. */
  otherKey: 4,
} as const;

export type Verdict = Exclude<keyof typeof EXIT_CODES, 'error'>;
