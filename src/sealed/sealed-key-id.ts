import { parseKeyId } from '../kms/key-ref.js';
import type { KeyRef } from '../kms/key-ref.js';

/** A key reference with its version: what a marker names. */
export type VersionedKeyRef = KeyRef & { version: string };

/**
 * `https://<vault>/keys/<name>/<version>` as a reference, or why it is not one (a sentence
 * fragment; the caller says where the id came from). The parsing is the KMS plugin's.
 */
export function parseVersionedKeyId(text: string): VersionedKeyRef | string {
  let ref: KeyRef;
  try {
    ref = parseKeyId(text);
  } catch {
    return 'is not a Key Vault key URL https://<vault>/keys/<name>/<version>';
  }
  if (!ref.version) return 'names no key version';
  if (`${ref.vaultUrl}/keys/${ref.name}/${ref.version}` !== text) return 'is not in its canonical form https://<vault>/keys/<name>/<version>';
  return { ...ref, version: ref.version };
}

/** `--key https://<vault>/keys/<name>[/<version>]` for sealing; throws a message naming the flag. */
export function parseSealKey(text: string): KeyRef {
  try {
    return parseKeyId(text);
  } catch (err) {
    throw new Error((err as Error).message.replace('--key-id', '--key'));
  }
}
