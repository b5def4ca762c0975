import type { IncomingMessage, ServerResponse } from 'node:http';

/** Answer with a JSON body, as Key Vault, Entra ID and IMDS do. */
export function sendJson(res: ServerResponse, statusCode: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(statusCode, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** The request body as text; rejects past `maxBytes`, counted as it arrives. */
export async function readBody(req: IncomingMessage, maxBytes: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) throw new Error('request body too large');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** One dev-vault route handler. */
export type Route = (req: IncomingMessage, res: ServerResponse, url: URL) => void | Promise<void>;
