/**
 * A reader of Java properties text following `java.util.Properties.load(Reader)`'s documented
 * rules (natural lines, `\` continuations, `#`/`!` comments, key ends at an unescaped `=`, `:` or
 * whitespace, escapes `\t \n \r \f \uXXXX` and `\x` for any other x), written from the Javadoc
 * so the template tests check podvault's escaping against the format, not against itself.
 */
export function readJavaProperties(text: string): Map<string, string> {
  const out = new Map<string, string>();
  const natural = text.split(/\r\n|\r|\n/);
  for (let i = 0; i < natural.length; i++) {
    let line = (natural[i] ?? '').replace(/^[ \t\f]+/, '');
    if (line === '' || line.startsWith('#') || line.startsWith('!')) continue;
    // A line ending in an odd number of backslashes continues on the next, whose leading whitespace is dropped.
    while (/(^|[^\\])(\\\\)*\\$/.test(line) && i + 1 < natural.length) {
      line = line.slice(0, -1) + (natural[++i] ?? '').replace(/^[ \t\f]+/, '');
    }
    let k = 0;
    let key = '';
    while (k < line.length) {
      const c = line[k] as string;
      if (c === '\\') {
        key += line.slice(k, k + 2);
        k += 2;
        continue;
      }
      if (c === '=' || c === ':' || c === ' ' || c === '\t' || c === '\f') break;
      key += c;
      k++;
    }
    while (line[k] === ' ' || line[k] === '\t' || line[k] === '\f') k++;
    if (line[k] === '=' || line[k] === ':') k++;
    while (line[k] === ' ' || line[k] === '\t' || line[k] === '\f') k++;
    out.set(unescape(key), unescape(line.slice(k)));
  }
  return out;
}

function unescape(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i] as string;
    if (c !== '\\') {
      out += c;
      continue;
    }
    const n = s[++i] ?? '';
    if (n === 'u') {
      out += String.fromCharCode(parseInt(s.slice(i + 1, i + 5), 16));
      i += 4;
    } else out += ({ t: '\t', n: '\n', r: '\r', f: '\f' } as Record<string, string>)[n] ?? n;
  }
  return out;
}
