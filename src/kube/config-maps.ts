/** What podvault reads of a ConfigMap: its `data` (text values; `binaryData` is not read). */
export interface ConfigMapData {
  data: Readonly<Record<string, string>>;
}

/**
 * Where ConfigMaps come from: the Kubernetes API (kube-config-maps.ts) or a standalone directory
 * (standalone-config-maps.ts). Callers pass the namespace of the pod being served, never one a
 * class or request names: templates read only ConfigMaps of their pod's own namespace.
 */
export interface ConfigMapSource {
  /** The ConfigMap, or undefined when there is none; throws a PodvaultError when it cannot be read. */
  get(namespace: string, name: string): Promise<ConfigMapData | undefined>;
}

/** Largest ConfigMap `data` podvault reads, keys and values in UTF-8 (the API server's own limit is 1 MiB). */
export const MAX_CONFIG_MAP_BYTES = 1024 * 1024;

export function configMapDataBytes(data: Readonly<Record<string, string>>): number {
  let bytes = 0;
  for (const [k, v] of Object.entries(data)) bytes += Buffer.byteLength(k, 'utf8') + Buffer.byteLength(v, 'utf8');
  return bytes;
}

/**
 * `source` with each ConfigMap read at most once for the life of the returned object (one
 * publish): a class's templates naming one ConfigMap cost one read, and all render from the same
 * text. Without it 100 templates naming one ConfigMap too big to cache were 100 GETs per publish.
 */
export function readOnce(source: ConfigMapSource): ConfigMapSource {
  const reads = new Map<string, Promise<ConfigMapData | undefined>>();
  return {
    get(namespace, name) {
      const key = `${namespace}/${name}`;
      let read = reads.get(key);
      if (!read) {
        read = source.get(namespace, name);
        reads.set(key, read);
      }
      return read;
    },
  };
}
