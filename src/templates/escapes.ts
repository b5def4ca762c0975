/**
 * The escapes a template applies on request (`{{ secret "db" | json }}`): each turns a value into
 * text that is safe inside one kind of quoted or delimited place of a config file, so a password
 * holding a quote, a newline or a `#` cannot end the string it is written into or start a line.
 */
export const PIPES = ['json', 'yaml', 'properties'] as const;
export type Pipe = (typeof PIPES)[number];

export function isPipe(name: string): name is Pipe {
  return (PIPES as readonly string[]).includes(name);
}

export function applyPipe(pipe: Pipe | undefined, value: string): string {
  switch (pipe) {
    case undefined:
      return value;
    case 'json':
    case 'yaml':
      return quotedStringContents(value);
    case 'properties':
      return propertiesValue(value);
  }
}

const SHORT_ESCAPES: Readonly<Record<string, string>> = { '"': '\\"', '\\': '\\\\', '\b': '\\b', '\f': '\\f', '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/**
 * The contents of a JSON string, which are also the contents of a YAML double-quoted scalar
 * (YAML 1.2 made its double-quoted escapes a superset of JSON's, and YAML 1.1 parsers read these
 * too): `"` and `\` escaped, every C0 control character, DEL and C1 control characters, U+2028 and
 * U+2029 (line ends to YAML and to JavaScript), U+FEFF and U+FFFE/U+FFFF (not printable to YAML)
 * written as `\uXXXX`. One pass, no regular expression with backtracking.
 */
function quotedStringContents(value: string): string {
  let out = '';
  let from = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    const special = c < 0x20 || c === 0x22 || c === 0x5c || (c >= 0x7f && c <= 0x9f) || c === 0x2028 || c === 0x2029 || c === 0xfeff || c === 0xfffe || c === 0xffff;
    if (!special) continue;
    out += value.slice(from, i) + (SHORT_ESCAPES[value[i] as string] ?? unicodeEscape(c));
    from = i + 1;
  }
  return from === 0 ? value : out + value.slice(from);
}

/**
 * A Java properties value (`java.util.Properties.load`): `\` doubled; line ends, tab and form feed
 * as `\n`, `\r`, `\t`, `\f`; `#`, `!`, `=` and `:` escaped (they start a comment at a line's
 * start and end a key; escaped they are plain characters anywhere); leading spaces escaped (load
 * drops the whitespace after the separator); every other character outside printable ASCII as
 * `\uXXXX` (UTF-16 units), since `load(InputStream)` reads ISO-8859-1.
 */
function propertiesValue(value: string): string {
  let out = '';
  let leading = true;
  for (let i = 0; i < value.length; i++) {
    const ch = value[i] as string;
    const c = value.charCodeAt(i);
    if (ch === ' ') out += leading ? '\\ ' : ' ';
    else {
      leading = false;
      if (ch === '\\') out += '\\\\';
      else if (ch === '\n') out += '\\n';
      else if (ch === '\r') out += '\\r';
      else if (ch === '\t') out += '\\t';
      else if (ch === '\f') out += '\\f';
      else if (ch === '#' || ch === '!' || ch === '=' || ch === ':') out += `\\${ch}`;
      else if (c < 0x20 || c > 0x7e) out += unicodeEscape(c);
      else out += ch;
    }
  }
  return out;
}

function unicodeEscape(code: number): string {
  return `\\u${code.toString(16).padStart(4, '0')}`;
}
