import { invalidArgument } from '../errors/podvault-error.js';
import type { PodvaultError } from '../errors/podvault-error.js';
import { isPipe, PIPES } from './escapes.js';
import type { Pipe } from './escapes.js';

/**
 * The template language of `objectType: template` (docs/templates.md). Expressions are one line
 * each, between `{{` and `}}`:
 *
 *   {{ secret "db-password" }}   the file of the class's secret object of that objectName or objectAlias
 *   {{ key "signing" }}          … of its key object (the public key, PEM)
 *   {{ cert "tls" }}             … of its cert object (the certificate, PEM)
 *   {{pv:…}}                     a sealed value, as `podvault seal` prints it
 *   {{ "{{" }}                   a literal text: the way to write `{{` where it would start an expression
 *
 * and any of the first four may end with one escape: `| json`, `| yaml` or `| properties`
 * (`{{ secret "db" | json }}`, `{{pv:… | yaml}}`). At each `{{`, spaces and tabs skipped:
 *   - `pv:`, a `"`, a function name (`secret`, `key`, `cert`), or any lowercase word followed by
 *     a space and a `"`, start an expression: from there on, anything malformed (an unknown
 *     function or pipe, a missing quote or `}}`, a line end before `}}`) fails the template with
 *     its line and column;
 *   - anything else (`{{ .Values.x }}`, `{{- if }}`, `{{}}`) is not an expression and is kept as
 *     written, so config files holding other template languages' braces need no escaping unless
 *     they use that one shape (Go's `{{ define "x" }}` or `{{ template "x" }}`: write `{{ "{{" }}`).
 *
 * The scan is one pass over the text: each character is looked at a bounded number of times.
 */
export const FUNCTIONS = ['secret', 'key', 'cert'] as const;
export type TemplateFunction = (typeof FUNCTIONS)[number];

/**
 * Largest template accepted, in UTF-8 bytes: twice the default --max-object-size (the rendered
 * file must fit it), a quarter of what a ConfigMap may hold. Checked before the text is scanned.
 */
export const MAX_TEMPLATE_BYTES = 256 * 1024;
/** Expressions one template may hold (each a lookup or a sealed value); config files hold tens. */
export const MAX_TEMPLATE_EXPRESSIONS = 1_000;

interface Position {
  line: number;
  column: number;
}

/** A reference to another object of the class. */
export interface ObjectExpression extends Position {
  kind: 'object';
  fn: TemplateFunction;
  name: string;
  pipe?: Pipe;
}

/** A sealed value; `marker` is the marker as `podvault seal` prints it (`{{pv:…}}`, no pipe, no spaces). */
export interface SealedExpression extends Position {
  kind: 'sealed';
  marker: string;
  pipe?: Pipe;
}

export type Expression = ObjectExpression | SealedExpression;

/** A template as text pieces and expressions in order. */
export interface ParsedTemplate {
  parts: Array<string | Expression>;
  expressions: Expression[];
}

const MAX_WORD = 32;

/** Parse a template; `where` names it in every error (`template "app.yaml" (ConfigMap ns/name key k)`). */
export function parseTemplate(text: string, where: string): ParsedTemplate {
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > MAX_TEMPLATE_BYTES) throw invalidArgument(`${where}: the template is ${bytes} bytes, over the limit of ${MAX_TEMPLATE_BYTES} bytes per template`);
  return new Scanner(text, where).run();
}

class Scanner {
  private readonly parts: Array<string | Expression> = [];
  private readonly expressions: Expression[] = [];
  private pending = '';
  /** Line number and the offset its first character has, kept up to date as the scan moves. */
  private line = 1;
  private lineStart = 0;
  /** The first line end not counted yet (-1: none left). */
  private nextLineEnd: number;

  constructor(
    private readonly text: string,
    private readonly where: string,
  ) {
    this.nextLineEnd = text.indexOf('\n');
  }

  run(): ParsedTemplate {
    const { text } = this;
    let from = 0;
    for (let open = text.indexOf('{{', 0); open >= 0; open = text.indexOf('{{', open)) {
      // In a run of braces only the last `{{` can open an expression: skip to it in one pass.
      if (text.charCodeAt(open + 2) === 0x7b) {
        let j = open + 3;
        while (text.charCodeAt(j) === 0x7b) j++;
        open = j - 2;
      }
      // Quick refusal: an expression starts with a letter (a word, `pv:`) or a quote after the spaces.
      // The spaces hold no `{{`, so the search goes on from the first character after them.
      const first = this.spaces(open + 2);
      const c = text.charCodeAt(first);
      if (c !== 0x22 && !((c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a))) {
        open = first > open + 2 ? first : open + 1;
        continue;
      }
      this.advanceLines(open);
      const end = this.expression(open);
      if (end === undefined) {
        open += 1; // not an expression: `{{` stays text; `{{{` may still hold one at the next `{`
        continue;
      }
      this.pending += text.slice(from, open);
      if (typeof end.value === 'string') this.pending += end.value;
      else {
        if (this.pending !== '') this.parts.push(this.pending);
        this.pending = '';
        this.parts.push(end.value);
        this.expressions.push(end.value);
      }
      from = open = end.end;
    }
    this.pending += text.slice(from);
    if (this.pending !== '') this.parts.push(this.pending);
    return { parts: this.parts, expressions: this.expressions };
  }

  /** Count the line ends up to `to` (each character once over the whole scan). */
  private advanceLines(to: number): void {
    while (this.nextLineEnd >= 0 && this.nextLineEnd < to) {
      this.line += 1;
      this.lineStart = this.nextLineEnd + 1;
      this.nextLineEnd = this.text.indexOf('\n', this.lineStart);
    }
  }

  private fail(at: number, message: string): PodvaultError {
    return invalidArgument(`${this.where}: line ${this.line}, column ${at - this.lineStart + 1}: ${message}`);
  }

  /**
   * The expression at `open` (a `{{`): its value (a literal text or an expression) and the offset
   * after its `}}`; undefined when the text there is not an expression.
   */
  private expression(open: number): { value: string | Expression; end: number } | undefined {
    const { text } = this;
    let i = this.spaces(open + 2);
    const position = { line: this.line, column: open - this.lineStart + 1 };
    if (text.startsWith('pv:', i)) {
      const start = i + 3;
      let j = start;
      while (j < text.length && isPayloadChar(text.charCodeAt(j))) j++;
      if (j === start) throw this.fail(i, 'a sealed value {{pv:…}} holds no payload');
      const marker = `{{pv:${text.slice(start, j)}}}`;
      const { pipe, end } = this.tail(j);
      return { value: { kind: 'sealed', marker, ...(pipe ? { pipe } : {}), ...position }, end: this.counting(end) };
    }
    if (text[i] === '"') {
      const { value, next } = this.string(i);
      const { pipe, end } = this.tail(next);
      if (pipe) throw this.fail(next, `a literal text takes no pipe (| ${pipe})`);
      return { value, end: this.counting(end) };
    }
    const wordStart = i;
    while (i < text.length && i - wordStart <= MAX_WORD && isWordChar(text.charCodeAt(i))) i++;
    const word = text.slice(wordStart, i);
    if (word === '' || i - wordStart > MAX_WORD) return undefined;
    const known = (FUNCTIONS as readonly string[]).includes(word) || isPipe(word);
    const afterSpaces = this.spaces(i);
    if (!known && !(afterSpaces > i && text[afterSpaces] === '"')) return undefined;
    if (!(FUNCTIONS as readonly string[]).includes(word)) {
      throw this.fail(wordStart, `unknown function ${JSON.stringify(word)}: the functions are ${FUNCTIONS.join(', ')} (write {{ "{{" }} for a literal {{)`);
    }
    if (afterSpaces === i || text[afterSpaces] !== '"') throw this.fail(afterSpaces, `${word} takes an object name in double quotes: {{ ${word} "name" }}`);
    const { value: name, next } = this.string(afterSpaces);
    if (!/^[-A-Za-z0-9./_]{1,255}$/.test(name)) throw this.fail(afterSpaces, `${word} ${JSON.stringify(name.slice(0, 64))}: not an objectName or objectAlias`);
    const { pipe, end } = this.tail(next);
    return { value: { kind: 'object', fn: word as TemplateFunction, name, ...(pipe ? { pipe } : {}), ...position }, end: this.counting(end) };
  }

  /** Counts an expression against the limit; returns `end`. */
  private counting(end: number): number {
    this.expressionsSeen += 1;
    if (this.expressionsSeen > MAX_TEMPLATE_EXPRESSIONS) throw this.fail(end, `over ${MAX_TEMPLATE_EXPRESSIONS} expressions in one template`);
    return end;
  }

  private expressionsSeen = 0;

  private spaces(i: number): number {
    while (this.text[i] === ' ' || this.text[i] === '\t') i++;
    return i;
  }

  /** A `"…"` at `i` (no escapes, no line end inside). */
  private string(i: number): { value: string; next: number } {
    let close = i + 1;
    while (close < this.text.length && this.text[close] !== '"' && this.text[close] !== '\n') close++;
    if (this.text[close] !== '"') throw this.fail(i, 'a quoted text is not closed on its line');
    return { value: this.text.slice(i + 1, close), next: close + 1 };
  }

  /** After an expression's value: an optional `| pipe`, then `}}`. */
  private tail(i: number): { pipe?: Pipe; end: number } {
    const { text } = this;
    let j = this.spaces(i);
    let pipe: Pipe | undefined;
    if (text[j] === '|') {
      const start = this.spaces(j + 1);
      j = start;
      while (j < text.length && j - start <= MAX_WORD && isWordChar(text.charCodeAt(j))) j++;
      const name = text.slice(start, j);
      if (!isPipe(name)) throw this.fail(start, `unknown pipe ${JSON.stringify(name.slice(0, MAX_WORD))}: the pipes are ${PIPES.join(', ')}`);
      pipe = name;
      j = this.spaces(j);
    }
    if (!text.startsWith('}}', j)) throw this.fail(j, 'expected }} to end the expression (an expression is on one line)');
    return { ...(pipe ? { pipe } : {}), end: j + 2 };
  }
}

/** base64url, and `=` padding. */
function isPayloadChar(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x2d || c === 0x5f || c === 0x3d;
}

function isWordChar(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c === 0x5f || c === 0x2d;
}
