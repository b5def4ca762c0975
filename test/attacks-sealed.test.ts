import { spawn } from 'node:child_process';
import { createCipheriv, randomBytes } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/identity';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../src/log.js';
import { AZURE_CLOUDS } from '../src/providers/azure/clouds.js';
import { additionalData, encodeMarker } from '../src/sealed/format.js';
import { findMarkers, findS5Markers, KeyVaultDataKeys, MAX_MARKERS_PER_TEXT, openMarkers, openS5Marker, renderText, resealText, sealDocument, SealedError, sealValues } from '../src/sealed/index.js';
import type { DataKeyUnwrapper, DataKeyWrapper, SealedMarker } from '../src/sealed/index.js';
import { s5AesMarker } from './support/s5-aes.js';

const BIN = join(import.meta.dirname, '..', 'bin', 'podvault.js');
const KID = 'https://myvault.vault.azure.net/keys/cfg/0123456789abcdef0123456789abcdef';

/** A key service in memory: what it wrapped it unwraps; for unknown bytes, 32 random ones. */
function memoryKeys(): DataKeyUnwrapper & DataKeyWrapper & { unwraps: number } {
  const keys = new Map<string, Buffer>();
  const state = {
    unwraps: 0,
    async unwrap(_kid: string, _alg: 'RSA-OAEP-256', wrapped: Uint8Array): Promise<Uint8Array> {
      state.unwraps += 1;
      return Buffer.from(keys.get(Buffer.from(wrapped).toString('hex')) ?? randomBytes(32));
    },
    async wrap(_kid: string, _alg: 'RSA-OAEP-256', dataKey: Uint8Array): Promise<{ versionedKeyId: string; wrapped: Uint8Array }> {
      const wrapped = randomBytes(256);
      keys.set(wrapped.toString('hex'), Buffer.from(dataKey));
      return { versionedKeyId: KID, wrapped };
    },
  };
  return state;
}

const junkMarker = (kid = KID): string => {
  const wrapped = randomBytes(256);
  return encodeMarker(additionalData(kid, wrapped), randomBytes(12), randomBytes(20));
};

/** A marker built field by field, so each field can be made hostile. */
function markerWith(kid: string): string {
  const wrapped = randomBytes(256);
  return encodeMarker(additionalData(kid, wrapped), randomBytes(12), randomBytes(20));
}

/** s5's aes output for raw bytes (not necessarily UTF-8). */
function s5MarkerOfBytes(value: Buffer, key: Buffer): string {
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  const sealed = Buffer.concat([cipher.update(value), cipher.final(), cipher.getAuthTag()]);
  return `{{s5:${Buffer.from(`${sealed.toString('hex')}:${nonce.toString('hex')}`).toString('base64')}}}`;
}

/** A credential that records every token asked for and never gives one. */
function recordingCredential(): TokenCredential & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    getToken(scopes: string | string[], _options?: GetTokenOptions): Promise<AccessToken | null> {
      asked.push(...(typeof scopes === 'string' ? [scopes] : scopes));
      return Promise.reject(new Error('no token in this test'));
    },
  };
}

/**
 * A hostile marker and file author, and a hostile vault origin, against src/sealed/ and the
 * render CLI (docs/security.md §12). Each case is an attack; the test is the promise that holds.
 */
describe('sealed values: attacks by a marker author', () => {
  it('key ids pointing elsewhere (http, userinfo, port tricks, upper-case host, paths, queries) are refused while decoding', () => {
    const tricks = [
      'http://myvault.vault.azure.net/keys/cfg/0123abcd',
      'https://user@myvault.vault.azure.net/keys/cfg/0123abcd',
      'https://:pass@myvault.vault.azure.net/keys/cfg/0123abcd',
      'https://evil.example@myvault.vault.azure.net/keys/cfg/0123abcd',
      'https://myvault.vault.azure.net:443/keys/cfg/0123abcd',
      'https://MYVAULT.vault.azure.net/keys/cfg/0123abcd',
      'https://myvault.vault.azure.net/keys/cfg/0123abcd?x=1',
      'https://myvault.vault.azure.net/keys/cfg/0123abcd#x',
      'https://myvault.vault.azure.net/keys/../secrets/cfg/0123abcd',
      'https://myvault.vault.azure.net/keys/cfg/0123abcd/extra',
      'https://myvault.vault.azure.net//keys/cfg/0123abcd',
      'https://myvault%2evault.azure.net/keys/cfg/0123abcd',
      'https://evil.example\\.vault.azure.net/keys/cfg/0123abcd',
    ];
    for (const kid of tricks) {
      expect(() => findMarkers(markerWith(kid)), kid).toThrow(/^line 1 column 1: malformed \{\{pv:…\}\} marker: key id ".*" (is not a Key Vault key URL|is not in its canonical form)/);
    }
  });

  it('vaults outside the cloud domain (look-alike suffixes, a trailing dot, an IP, a Managed HSM) get no token request', async () => {
    const credential = recordingCredential();
    const keys = new KeyVaultDataKeys({
      credential,
      settings: { allowedVaultOrigins: [], maxRetries: 0 },
      cloud: AZURE_CLOUDS[0]!,
      allowedOrigins: [],
      log: createLogger({ level: 'silent' }),
      maxAttempts: 1,
    });
    const hosts = ['myvault.vault.azure.net.evil.example', 'myvaultvault.azure.net', 'vault.azure.net', 'myvault.vault.azure.net.', '10.0.0.1', 'myhsm.managedhsm.azure.net', 'myvault.vault.azure.cn'];
    for (const host of hosts) {
      const kid = `https://${host}/keys/cfg/0123abcd`;
      const text = `x: ${markerWith(kid)}`;
      const err = await renderText(text, { unwrapper: keys }).catch((e: unknown) => e);
      expect(err, host).toBeInstanceOf(SealedError);
      expect((err as SealedError).kind, host).toBe('permission-denied');
      expect((err as Error).message, host).toMatch(/outside vault\.azure\.net; podvault sends its Key Vault token there only when told to/);
    }
    expect(credential.asked).toEqual([]);
  });

  it('overlapping and broken markers ({{pv:{{pv:…}}, CR, NUL, U+2028) are errors, never left in the output', () => {
    const m = junkMarker();
    const cases: Array<[string, RegExp]> = [
      [`{{pv:${m}`, /^line 1 column 1: .*character "\{" at column 6 is not base64url/],
      [`{{pv:{{pv:AAAA}}}}`, /^line 1 column 1: .*character "\{"/],
      [`${m.slice(0, -2)}\r\n}}`, /^line 1 column 1: .*the line ends before its closing \}\}/],
      [`a\r\nb ${m.slice(0, 20)}\u0000${m.slice(20)}`, /^line 2 column 3: .*character U\+0000 at column 23 is not base64url/],
      [`${m.slice(0, 20)}\u2028${m.slice(20)}`, /^line 1 column 1: .*character U\+2028 at column 21 is not base64url/],
    ];
    for (const [text, message] of cases) expect(() => findMarkers(text), JSON.stringify(text.slice(0, 30))).toThrow(message);
  });

  it('a character after {{pv: that could steer a terminal (bidi override, C1 CSI) is named by its code point, never echoed', () => {
    for (const ch of ['\u202e', '\u009b', '\u001b', '\ud83d\udd11']) {
      const err = (() => {
        try {
          findMarkers(`{{pv:AAAA${ch}}}`);
        } catch (e) {
          return e as Error;
        }
        return undefined;
      })();
      expect(err?.message).toMatch(/character U\+[0-9A-F]{4,6} at column 10 is not base64url$/);
      expect(err?.message).not.toContain(ch);
    }
  });

  it('a tag cut short by 1 to 15 bytes (Node accepts 4-byte GCM tags unless told the length) never authenticates', async () => {
    const keys = memoryKeys();
    const { markers } = await sealValues(['tag-canary'], KID, keys);
    const body = Buffer.from(markers[0]!.slice(5, -2), 'base64url');
    for (let cut = 1; cut < 16; cut += 1) {
      const text = `{{pv:${body.subarray(0, body.length - cut).toString('base64url')}}}`;
      const err = await renderText(text, { unwrapper: keys }).catch((e: unknown) => e as Error);
      expect(err, `cut ${cut}`).toBeInstanceOf(SealedError);
      expect((err as Error).message).toMatch(/does not authenticate|too short for its nonce and tag/);
    }
  });

  it('a value that itself holds a marker is written as it is, not opened again (render is one pass)', async () => {
    const keys = memoryKeys();
    const inner = (await sealValues(['inner-secret'], KID, keys)).markers[0]!;
    const outer = (await sealValues([`${inner}${inner}`], KID, keys)).markers[0]!;
    const before = keys.unwraps;
    expect(await renderText(`v: ${outer}`, { unwrapper: keys })).toBe(`v: ${inner}${inner}`);
    expect(keys.unwraps - before).toBe(1);
  });

  it(`more than ${MAX_MARKERS_PER_TEXT} markers handed to openMarkers one by one (as a template scanner does): refused before any unwrap`, async () => {
    const keys = memoryKeys();
    const one = findMarkers(junkMarker())[0]!;
    const many: SealedMarker[] = Array.from({ length: MAX_MARKERS_PER_TEXT + 1 }, (_, i) => ({ ...one, line: i + 1 }));
    const err = await openMarkers(many, keys).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SealedError);
    expect((err as SealedError).kind).toBe('resource-exhausted');
    expect((err as Error).message).toBe(`line ${MAX_MARKERS_PER_TEXT + 1} column 1: more than ${MAX_MARKERS_PER_TEXT} {{pv:…}} markers in one text`);
    expect(keys.unwraps).toBe(0);
  });

  it('the first failing unwrap aborts the others in flight and starts no more: a hostile text cannot keep vault calls running', async () => {
    const aborted: number[] = [];
    let calls = 0;
    const unwrapper: DataKeyUnwrapper = {
      unwrap: (_kid, _alg, _wrapped, signal) => {
        const n = (calls += 1);
        if (n === 4) return Promise.reject(new SealedError('permission-denied', 'HTTP 403'));
        return new Promise((_resolve, reject) => {
          const timer = setTimeout(() => reject(new Error('not aborted')), 10_000);
          signal?.addEventListener('abort', () => {
            clearTimeout(timer);
            aborted.push(n);
            reject(signal.reason as Error);
          });
        });
      },
    };
    const text = Array.from({ length: 10 }, () => junkMarker()).join('\n');
    const started = performance.now();
    await expect(openMarkers(findMarkers(text), unwrapper)).rejects.toThrow(/^line 4 column 1: key .*: cannot unwrap the marker's data key: HTTP 403$/);
    await new Promise((resolve) => setImmediate(resolve));
    expect(performance.now() - started).toBeLessThan(2000);
    expect(aborted.sort()).toEqual([1, 2, 3]);
    expect(calls).toBe(4);
  });
});

describe('sealed values: attacks through s5 markers', () => {
  it('an s5 value that is not UTF-8 is refused, not silently replaced by U+FFFD (render would corrupt it, reseal would seal the damage)', async () => {
    const key = randomBytes(32);
    const marker = s5MarkerOfBytes(Buffer.from([0x70, 0xff, 0xfe, 0x77]), key);
    const text = `a: ok\npass: ${marker}\n`;
    expect(() => openS5Marker(findS5Markers(text)[0]!, key)).toThrow(/^line 2 column 7: \{\{s5:…\}\} marker \(aes engine\): the value is not UTF-8 text$/);
    const keys = memoryKeys();
    await expect(resealText(text, { s5AesKey: key, wrapper: keys, keyId: KID })).rejects.toThrow(/the value is not UTF-8 text/);
    await expect(renderText(text, { unwrapper: keys, s5AesKey: key })).rejects.toThrow(/the value is not UTF-8 text/);
  });
});

describe('seal --file: only the sealed values change', () => {
  /** `text` with each `{{pv:…}}` marker (quoted as seal writes it) replaced by `<M>`. */
  const masked = (text: string): string => text.replace(/\{\{pv:[A-Za-z0-9_-]+\}\}/g, '<M>');

  it('YAML: every other byte stays (CRLF, big integers, 1e3, +1, .5, long decimals, hex case, flow spacing, blank lines, comment spacing)', async () => {
    const keys = memoryKeys();
    const text = '# c\r\nid: 12345678901234567890\r\ne: 1e3\r\np: +1\r\nd: .5\r\npi: 3.141592653589793238\r\nh: 0x1F\r\nlist: [a,   b]\r\nk:    v   # note\r\n\r\n\r\npw: hunter2\r\nport: 0x1F\r\nblock: |\r\n  x\r\n  y\r\ntail: z\r\n';
    const { text: out } = await sealDocument(text, 'yaml', ['pw', 'port', 'block'], KID, keys);
    expect(masked(out)).toBe(text.replace('pw: hunter2', 'pw: "<M>"').replace('port: 0x1F', 'port: "<M>"').replace('block: |\r\n  x\r\n  y\r\n', 'block: "<M>"\r\n'));
    expect(await renderText(out, { unwrapper: keys })).toBe(text.replace('pw: hunter2', 'pw: "hunter2"').replace('port: 0x1F', 'port: "0x1F"').replace('block: |\r\n  x\r\n  y\r\n', 'block: "x\ny\n"\r\n'));
  });

  it('JSON: every other byte stays (tabs, big integers, 1.0, escapes); the sealed number is its exact digits', async () => {
    const keys = memoryKeys();
    const text = '{\n\t"id": 12345678901234567890,\n\t"f": 1.0,\n\t"s": "caf\\u00e9 \\/",\n\t"key": "k-123",\n\t"n": 98765432109876543210\n}';
    const { text: out } = await sealDocument(text, 'json', ['key', 'n'], KID, keys);
    expect(masked(out)).toBe(text.replace('"k-123"', '"<M>"').replace('98765432109876543210', '"<M>"'));
    expect(JSON.parse(await renderText(out, { unwrapper: keys }))).toMatchObject({ key: 'k-123', n: '98765432109876543210' });
  });

  it('ambiguous input is refused: duplicate JSON keys (readers disagree on which wins), one value named twice, an explicit non-string tag', async () => {
    const keys = memoryKeys();
    await expect(sealDocument('{"pw": "a", "pw": "hunter2"}', 'json', ['pw'], KID, keys)).rejects.toThrow(/^cannot read the JSON's structure at line 1 column \d+ \(DUPLICATE_KEY\)$/);
    await expect(sealDocument('pw: x\n', 'yaml', ['pw', 'pw'], KID, keys)).rejects.toThrow('--path pw: the value is named twice');
    await expect(sealDocument('n: !!int 5\n', 'yaml', ['n'], KID, keys)).rejects.toThrow('--path n: the value has the explicit tag "tag:yaml.org,2002:int"; remove it to seal the value');
    expect(keys.unwraps).toBe(0);
  });
});

describe('render CLI: where the plaintext lands', () => {
  let work: string;
  const s5Key = randomBytes(32).toString('hex');
  const run = (args: string[], input = ''): Promise<{ code: number | null; stdout: string; stderr: string }> =>
    new Promise((resolve, reject) => {
      const env = { ...process.env, S5_AES_KEY: s5Key };
      const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      child.once('error', reject);
      child.once('exit', (code) => resolve({ code, stdout, stderr }));
      child.stdin.end(input);
    });

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'podvault-attseal-'));
  });
  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('render -i of a 0644 sealed file, or -o over a 0666 file someone left, writes the plaintext 0600', async () => {
    const file = join(work, 'app.yaml');
    await writeFile(file, `pass: ${s5AesMarker('mode-canary', s5Key)}\n`);
    await chmod(file, 0o644);
    const inPlace = await run(['render', file, '-i']);
    expect(inPlace).toMatchObject({ code: 0, stderr: '' });
    expect(await readFile(file, 'utf8')).toBe('pass: mode-canary\n');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const source = join(work, 'src.yaml');
    await writeFile(source, `pass: ${s5AesMarker('mode-canary', s5Key)}\n`);
    const out = join(work, 'out.yaml');
    await writeFile(out, 'old\n');
    await chmod(out, 0o666);
    expect(await run(['render', source, '-o', out])).toMatchObject({ code: 0, stderr: '' });
    expect(await readFile(out, 'utf8')).toBe('pass: mode-canary\n');
    expect((await stat(out)).mode & 0o777).toBe(0o600);
  });
});
