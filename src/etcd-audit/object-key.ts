/** Where an object's etcd key says it lives: `<prefix>/<resource>/<namespace>/<name>` or, cluster-scoped, `<prefix>/<resource>/<name>`. */
export interface ObjectName {
  /** Empty for a cluster-scoped object. */
  namespace: string;
  name: string;
}

/** Longer keys are cut: a Kubernetes namespace is ≤ 63 characters and a name ≤ 253. */
const MAX_SHOWN = 320;

/**
 * The namespace and name in a key below `resourcePrefix` (which ends with `/`). Keys are metadata,
 * not values, but etcd holds whatever was written: anything other than printable ASCII is shown
 * escaped, so a key cannot move a terminal's cursor or forge a line of the report.
 */
export function objectNameOf(key: Uint8Array, resourcePrefix: Buffer): ObjectName {
  const rest = printable(Buffer.from(key.buffer, key.byteOffset, key.byteLength).subarray(resourcePrefix.length));
  const slash = rest.indexOf('/');
  return slash < 0 ? { namespace: '', name: rest } : { namespace: rest.slice(0, slash), name: rest.slice(slash + 1) };
}

function printable(bytes: Buffer): string {
  const cut = bytes.length > MAX_SHOWN;
  const shown = bytes.subarray(0, MAX_SHOWN);
  const plain = shown.every((b) => b > 0x20 && b < 0x7f && b !== 0x5c);
  const text = plain ? shown.toString('ascii') : JSON.stringify(shown.toString('latin1')).slice(1, -1).replace(/[^\x20-\x7e]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return cut ? `${text}…` : text;
}
