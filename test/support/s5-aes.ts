import { createCipheriv, randomBytes } from 'node:crypto';

/** s5's aes engine output, built from its documented format: base64(hex(ct‖tag):hex(nonce)). */
export function s5AesMarker(value: string, keyHex: string, spaced = false): string {
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', Buffer.from(keyHex, 'hex'), nonce);
  const sealed = Buffer.concat([cipher.update(value, 'utf8'), cipher.final(), cipher.getAuthTag()]);
  const body = Buffer.from(`${sealed.toString('hex')}:${nonce.toString('hex')}`).toString('base64');
  return spaced ? `{{ s5:${body} }}` : `{{s5:${body}}}`;
}
