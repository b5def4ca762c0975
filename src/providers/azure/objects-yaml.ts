import { isScalar, parseDocument, visit } from 'yaml';

/**
 * The YAML of a class's `objects` parameter (or of one of its entries) as plain values, as
 * `yaml.parse` gives them, except that an unquoted `filePermission` keeps the text its author
 * wrote. The Azure provider's getting-started page writes `filePermission: 0755`, which YAML reads
 * as a number, and which number depends on the YAML version (1.2: decimal 755, 1.1: octal 493);
 * the digits as written are the octal mode the author meant, so the scalar's source is kept and
 * checked as the quoted form would be. Throws the first YAML error, as `yaml.parse` does.
 */
export function parseObjectsYaml(text: string): unknown {
  const doc = parseDocument(text);
  const [error] = doc.errors;
  if (error) throw error;
  visit(doc, {
    Pair(_key, pair) {
      if (isScalar(pair.key) && pair.key.value === 'filePermission' && isScalar(pair.value) && typeof pair.value.value === 'number' && pair.value.source !== undefined) {
        pair.value.value = pair.value.source;
      }
    },
  });
  return doc.toJS();
}
