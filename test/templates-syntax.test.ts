import { parse as parseYaml } from 'yaml';
import { describe, expect, it } from 'vitest';
import { applyPipe } from '../src/templates/escapes.js';
import { renderTemplate } from '../src/templates/render-template.js';
import { MAX_TEMPLATE_BYTES, MAX_TEMPLATE_EXPRESSIONS, parseTemplate } from '../src/templates/template-syntax.js';
import { readJavaProperties } from './support/java-properties.js';

const render = (text: string, values: Record<string, string>): string =>
  renderTemplate(parseTemplate(text, 'tpl'), (e) => (e.kind === 'object' ? (values[e.name] ?? '?') : `<${e.marker}>`), 1 << 20, 'tpl', '--max-object-size').toString('utf8');

/** Every BMP code point but the surrogates, and a few astral ones: what a value may hold. */
const ALL = Array.from({ length: 0x10000 }, (_, c) => c).filter((c) => c < 0xd800 || c > 0xdfff).map((c) => String.fromCharCode(c)).join('') + '😀𝄞';

describe('the template language', () => {
  it('replaces expressions, keeps other brace text as written, and never expands a value', () => {
    expect(render('a={{ secret "a" }} b={{secret "b"|json}} c={{ key "k" }}{{ cert "c" }}', { a: '1', b: '"2"', k: 'K', c: 'C' })).toBe('a=1 b=\\"2\\" c=KC');
    expect(render('{{ .Values.x }} {{- if }} {{}} {{{ secret "a" }}} {{ "{{" }} {{ "}}" }}', { a: 'x' })).toBe('{{ .Values.x }} {{- if }} {{}} {x} {{ }}');
    // A value holding template text is data: it is written as it is, not read again.
    expect(render('{{ secret "a" }}', { a: '{{ secret "b" }} {{pv:AAAA}}' })).toBe('{{ secret "b" }} {{pv:AAAA}}');
    expect(render('x: {{pv:QUJD | json}} {{ pv:QUJD }}', {})).toBe('x: <{{pv:QUJD}}> <{{pv:QUJD}}>');
  });

  it.each([
    ['{{ secret "a" | upper }}', /line 1, column 17: unknown pipe "upper"/],
    ['\n\n  {{ define "x" }}', /line 3, column 6: unknown function "define"/],
    ['{{ "{{" | json }}', /a literal text takes no pipe/],
    ['{{ secret "a"', /line 1, column 14: expected \}\} to end the expression/],
    ['{{ secret "a\n" }}', /line 1, column 11: a quoted text is not closed on its line/],
    ['{{ secret "" }}', /not an objectName or objectAlias/],
    ['{{pv:}}', /a sealed value \{\{pv:…\}\} holds no payload/],
    ['{{pv:abc def}}', /line 1, column 10: expected \}\}/],
  ])('%j fails naming line and column', (text, message) => {
    expect(() => parseTemplate(text, 'tpl')).toThrow(message);
  });

  it('refuses a template over its size or expression limit before rendering', () => {
    expect(() => parseTemplate('x'.repeat(MAX_TEMPLATE_BYTES + 1), 'tpl')).toThrow(`over the limit of ${MAX_TEMPLATE_BYTES} bytes per template`);
    expect(() => parseTemplate('{{ secret "a" }}'.repeat(MAX_TEMPLATE_EXPRESSIONS + 1), 'tpl')).toThrow(`over ${MAX_TEMPLATE_EXPRESSIONS} expressions`);
    const small = parseTemplate('{{ secret "a" }}'.repeat(100), 'tpl');
    expect(() => renderTemplate(small, () => 'v'.repeat(1000), 50_000, 'tpl', '--max-object-size')).toThrow('the rendered file is over the limit of 50000 bytes per object (--max-object-size)');
  });

  it('| json and | yaml give a quoted string that parses back to every character', () => {
    const escaped = applyPipe('json', ALL);
    expect(JSON.parse(`"${escaped}"`)).toBe(ALL);
    expect(parseYaml(`v: "${applyPipe('yaml', ALL)}"`)).toEqual({ v: ALL });
    // Nothing in the escaped text can end the string or the line.
    expect(escaped).not.toMatch(/(^|[^\\])(\\\\)*"|[\n\r\u2028\u2029\u0085]/);
  });

  it('| properties gives a value Java\'s Properties.load reads back to every character', () => {
    for (const value of [ALL, '   leading', '#comment', '!bang', 'a=b:c', 'trailing\\', 'multi\nline\r\n']) {
      const props = readJavaProperties(`k=${applyPipe('properties', value)}\nnext=1\n`);
      expect(props.get('k')).toBe(value);
      expect(props.get('next')).toBe('1');
    }
    expect(applyPipe('properties', ALL)).toMatch(/^[\x20-\x7e]*$/);
  });

  it('scans in linear time: one 128 KiB text costs about what 16 texts of 8 KiB do', () => {
    // The fastest of several alternating trials of each: preemption and GC on a loaded machine only
    // ever add time, so the minimums compare the work itself. Quadratic scanning would give 16.
    const ratio = (big: string[], small: string[]): number => {
      const run = (texts: string[]): number => {
        const started = performance.now();
        for (let i = 0; i < 5; i++) for (const t of texts) parseTemplate(t, 'tpl');
        return performance.now() - started;
      };
      run(big);
      run(small);
      let bestBig = Infinity;
      let bestSmall = Infinity;
      for (let trial = 0; trial < 9; trial++) {
        bestBig = Math.min(bestBig, run(big));
        bestSmall = Math.min(bestSmall, run(small));
      }
      return bestBig / bestSmall;
    };
    for (const unit of ['{{ ', '{{{{', '{{ abcdefghij ', 'x {{ secret "a" }}\n']) {
      // Expressions are capped: that text is compared under the cap.
      const bigCount = unit.includes('secret') ? MAX_TEMPLATE_EXPRESSIONS : Math.floor(MAX_TEMPLATE_BYTES / unit.length / 2);
      const big = unit.repeat(bigCount);
      const small = unit.repeat(bigCount / 16);
      expect(ratio([big], Array.from({ length: 16 }, () => small)), JSON.stringify(unit)).toBeLessThan(4);
    }
  });
});
