import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { open, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** Largest text the CLI reads (a file or stdin): 64 MiB, so a marker file of any sane size fits. */
export const MAX_INPUT_BYTES = 64 * 1024 * 1024;

const utf8 = new TextDecoder('utf-8', { fatal: true });

function decode(bytes: Buffer, name: string): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw new Error(`${name}: not UTF-8 text`);
  }
}

/**
 * The whole of FILE (a regular file, opened non-blocking so a FIFO cannot hang the open) or of
 * stdin, at most MAX_INPUT_BYTES, as UTF-8 text. Errors name the file and the OS code only.
 */
export async function readText(file: string | undefined): Promise<string> {
  if (file === undefined) {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > MAX_INPUT_BYTES) throw new Error(`<stdin>: larger than ${MAX_INPUT_BYTES} bytes`);
      chunks.push(chunk);
    }
    return decode(Buffer.concat(chunks), '<stdin>');
  }
  const handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK).catch((err: NodeJS.ErrnoException) => {
    throw new Error(`${file}: cannot read it (${err.code ?? 'error'})`);
  });
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw new Error(`${file}: not a regular file`);
    if (info.size > MAX_INPUT_BYTES) throw new Error(`${file}: larger than ${MAX_INPUT_BYTES} bytes`);
    const bytes = await handle.readFile();
    if (bytes.length > MAX_INPUT_BYTES) throw new Error(`${file}: larger than ${MAX_INPUT_BYTES} bytes`);
    return decode(bytes, file);
  } finally {
    await handle.close();
  }
}

/**
 * `text` into `path` atomically: a new file beside it (0600, or the mode of the file it replaces),
 * then a rename over it, so a reader sees the old file or the new one and a failure leaves the old.
 */
export async function writeTextAtomically(path: string, text: string): Promise<void> {
  const mode = await stat(path).then((s) => s.mode & 0o777, () => 0o600);
  const temp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode);
  try {
    await handle.writeFile(text);
    await handle.chmod(mode);
    await handle.sync();
    await handle.close();
    await rename(temp, path);
  } catch (err) {
    await handle.close().catch(() => undefined);
    await rm(temp, { force: true });
    throw new Error(`${path}: cannot write it (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { cause: err });
  }
}

/** Where the result goes: `-o OUT`, `-i` (over FILE), or stdout. */
export async function writeResult(text: string, options: { file?: string; output?: string; inPlace?: boolean }): Promise<void> {
  if (options.inPlace) return writeTextAtomically(options.file as string, text);
  if (options.output) return writeTextAtomically(options.output, text);
  await new Promise<void>((resolve, reject) => process.stdout.write(text, (err) => (err ? reject(err) : resolve())));
}

/** `-o` and `-i` exclude each other, and `-i` needs a FILE. */
export function checkOutputFlags(options: { file?: string; output?: string; inPlace?: boolean }): void {
  if (options.output && options.inPlace) throw new Error('give -o/--output or -i/--in-place, not both');
  if (options.inPlace && options.file === undefined) throw new Error('-i/--in-place needs a FILE (stdin cannot be rewritten)');
}
