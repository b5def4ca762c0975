import { isMap, isScalar, parseDocument, visit } from 'yaml';

/**
 * The YAML of a class's `objects` parameter (or of one of its entries) as plain values, as
 * `yaml.parse` gives them, except that an unquoted `filePermission` keeps the text its author
 * wrote. The Azure provider's getting-started page writes `filePermission: 0755`, which YAML reads
 * as a number, and which number depends on the YAML version (1.2: decimal 755, 1.1: octal 493);
 * the digits as written are the octal mode the author meant, so the scalar's source is kept and
 * checked as the quoted form would be. Throws the first YAML error, as `yaml.parse` does.
 *
 * Duplicate keys are refused as `yaml` refuses them (scalars of equal value), but by one set per
 * mapping: `yaml`'s own check compares each key with every earlier one, and one 63 KiB entry of
 * 7,000 keys held the serving thread for 0.45 s on every publish of its class.
 */
export function parseObjectsYaml(text: string): unknown {
  const doc = parseDocument(text, { uniqueKeys: false });
  const [error] = doc.errors;
  if (error) throw error;
  visit(doc, {
    Map(_key, map) {
      if (!isMap(map)) return;
      const seen = new Set<unknown>();
      for (const { key } of map.items) {
        const value: unknown = isScalar(key) ? key.value : key;
        if (typeof value === 'number' && Number.isNaN(value)) continue;
        if (seen.has(value)) throw new Error(`Map keys must be unique${isScalar(key) ? ` (key ${JSON.stringify(String(value).slice(0, 64))} appears twice)` : ''}`);
        seen.add(value);
      }
    },
    Pair(_key, pair) {
      if (isScalar(pair.key) && pair.key.value === 'filePermission' && isScalar(pair.value) && typeof pair.value.value === 'number' && pair.value.source !== undefined) {
        pair.value.value = pair.value.source;
      }
    },
  });
  return doc.toJS();
}
