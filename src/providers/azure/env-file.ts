import { invalidArgument } from '../../errors/podvault-error.js';

/**
 * The class's `envFile`: one file in the volume with a `NAME='value'` line per object (and per
 * jmesPath field), for `set -a; . /mnt/secrets/app.env; set +a` (Secrets Store CSI driver #298,
 * #1176, #527: environment variables without a Kubernetes Secret).
 *
 * Values are POSIX-shell single-quoted: everything between single quotes is literal to `sh` (`$`,
 * backticks, backslashes, newlines), and a `'` is written `'\''` (close, escaped quote, reopen).
 * A NUL cannot live in a shell variable, so a value holding one is refused.
 */

/** `envName: "-"` leaves an object or field out of the env file. */
export const ENV_NAME_OMIT = '-';
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,254}$/;

/**
 * The `envName` field of an object or jmesPath entry: undefined (derive it from the file name),
 * null (`-`: not in the env file), or a name valid for `sh` — letters, digits and `_`, not
 * starting with a digit. `at` names the object (and field) in the refusal.
 */
export function parseEnvName(value: unknown, at: string): string | null | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw invalidArgument(`${at}: field envName must be a string`);
  const name = value.trim();
  if (name === '') return undefined;
  if (name === ENV_NAME_OMIT) return null;
  if (!ENV_NAME.test(name)) throw invalidArgument(`${at}: field envName ${JSON.stringify(name)} must be letters, digits and _ (at most 255), not starting with a digit`);
  return name;
}

/** The default name for a file: upper-cased, every character outside `[A-Z0-9_]` as `_`, `_` before a leading digit. */
export function envNameFromFile(fileName: string): string {
  const name = fileName.toUpperCase().replace(/[^A-Z0-9_]/g, '_').slice(0, 254);
  return /^[0-9]/.test(name) ? `_${name}` : name;
}

export interface EnvEntry {
  name: string;
  value: Buffer;
  /** The file's mode: the env file gets the intersection of its entries' modes. */
  mode: number;
  /** Names the object (and field) in messages, never the value. */
  what: string;
}

/** `'…'` for `sh`: literal between the quotes, `'` as `'\''`. */
export function shellQuote(value: string): string {
  return `'${value.replaceAll("'", "'\\''")}'`;
}

/** The env file's bytes; refuses a name given twice (naming both) and a value holding NUL. */
export function renderEnvFile(file: string, entries: readonly EnvEntry[]): Buffer {
  const seen = new Map<string, string>();
  const lines: Buffer[] = [];
  for (const e of entries) {
    const other = seen.get(e.name);
    if (other !== undefined) throw invalidArgument(`parameter envFile ${JSON.stringify(file)}: ${e.what} and ${other} both set variable ${e.name}; give one of them another envName`);
    seen.set(e.name, e.what);
    if (e.value.includes(0)) throw invalidArgument(`parameter envFile ${JSON.stringify(file)}: ${e.what} holds a NUL byte, which a shell variable cannot; set envName: "-" to leave it out`);
    // Byte-exact: the value's bytes go between the quotes as they are, UTF-8 or not.
    const quoted = Buffer.from(shellQuote(e.value.toString('latin1')), 'latin1');
    lines.push(Buffer.from(`${e.name}=`, 'latin1'), quoted, Buffer.from('\n'));
  }
  return Buffer.concat(lines);
}
