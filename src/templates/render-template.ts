import { resourceExhausted } from '../errors/podvault-error.js';
import { applyPipe } from './escapes.js';
import type { Expression, ParsedTemplate } from './template-syntax.js';

/**
 * The file a parsed template becomes: its text with each expression replaced by `valueOf(it)`,
 * escaped by its pipe. The output is counted as it grows and refused once past `maxBytes` (an
 * escape can make a value six times longer), so the whole file is never built beyond the limit.
 * `limitName` names the limit in the message (`--max-object-size`).
 */
export function renderTemplate(template: ParsedTemplate, valueOf: (expression: Expression) => string, maxBytes: number, where: string, limitName: string): Buffer {
  const pieces: string[] = [];
  let bytes = 0;
  for (const part of template.parts) {
    const text = typeof part === 'string' ? part : applyPipe(part.pipe, valueOf(part));
    bytes += Buffer.byteLength(text, 'utf8');
    if (bytes > maxBytes) throw resourceExhausted(`${where}: the rendered file is over the limit of ${maxBytes} bytes per object (${limitName})`);
    pieces.push(text);
  }
  return Buffer.from(pieces.join(''), 'utf8');
}
