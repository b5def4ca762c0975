import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { additionalData, encodeMarker, MAX_MARKER_CHARS } from '../src/sealed/format.js';
import { findMarkers, MAX_DATA_KEYS_PER_TEXT, openMarkers, renderText, sealDocument, SealedError, sealValues } from '../src/sealed/index.js';
import type { DataKeyUnwrapper, DataKeyWrapper } from '../src/sealed/index.js';

const KID = 'https://myvault.vault.azure.net/keys/cfg/0123456789abcdef0123456789abcdef';

/** A key service in memory that counts its calls: a hostile text's cost is measured in them. */
function countingKeys(): DataKeyUnwrapper & DataKeyWrapper & { unwraps: number; keys: Map<string, Buffer> } {
  const keys = new Map<string, Buffer>();
  const state = {
    unwraps: 0,
    keys,
    async unwrap(_kid: string, _alg: 'RSA-OAEP-256', wrapped: Uint8Array): Promise<Uint8Array> {
      state.unwraps += 1;
      const key = keys.get(Buffer.from(wrapped).toString('hex'));
      // A key service hands back whatever the bytes unwrap to: here, for unknown bytes, 32 random ones.
      return key ? Buffer.from(key) : randomBytes(32);
    },
    async wrap(_kid: string, _alg: 'RSA-OAEP-256', dataKey: Uint8Array): Promise<{ versionedKeyId: string; wrapped: Uint8Array }> {
      const wrapped = randomBytes(256);
      keys.set(wrapped.toString('hex'), Buffer.from(dataKey));
      return { versionedKeyId: KID, wrapped };
    },
  };
  return state;
}

/** A well-formed marker under a fresh wrapped key that opens to nothing (bytes that do not authenticate). */
const junkMarker = (): string => {
  const wrapped = randomBytes(256);
  return encodeMarker(additionalData(KID, wrapped), randomBytes(12), randomBytes(20));
};

/**
 * Hostile marker text and hostile files (docs/security.md §12): limits checked before any vault
 * call, unwrapped bytes never shown, no value in any message.
 */
describe('sealed values: hostile texts', () => {
  it(`more than ${MAX_DATA_KEYS_PER_TEXT} distinct data keys in one text: refused before any unwrap`, async () => {
    const keys = countingKeys();
    const text = Array.from({ length: MAX_DATA_KEYS_PER_TEXT + 1 }, junkMarker).join('\n');
    const err = await openMarkers(findMarkers(text), keys).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SealedError);
    expect((err as Error).message).toBe(`line ${MAX_DATA_KEYS_PER_TEXT + 1} column 1: more than ${MAX_DATA_KEYS_PER_TEXT} distinct data keys in one text (each needs a vault call); seal a file's values in one run (podvault seal --file) so they share one`);
    expect(keys.unwraps).toBe(0);
  });

  it('more than 10,000 markers, or one marker past its maximum length: refused while reading', () => {
    const one = junkMarker();
    expect(() => findMarkers(`${one}\n`.repeat(10_001))).toThrow(/^line 10001 column 1: more than 10000 \{\{pv:…\}\} markers/);
    const long = `x {{pv:${'A'.repeat(MAX_MARKER_CHARS)}}}`;
    const started = performance.now();
    expect(() => findMarkers(long)).toThrow(/^line 1 column 3: malformed \{\{pv:…\}\} marker: longer than 1399519 characters/);
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('a marker wrapping some other ciphertext of the key (a KMS seed, another data key): the unwrapped bytes are never shown', async () => {
    const keys = countingKeys();
    const foreign = junkMarker();
    const err = await renderText(`a: ${foreign}`, { unwrapper: keys }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/^line 1 column 4: key https:\/\/myvault\.vault\.azure\.net\/keys\/cfg\/\w+: the marker does not authenticate/);
    const shortKey: DataKeyUnwrapper = { unwrap: async () => Buffer.from('sixteen byte key') };
    await expect(renderText(foreign, { unwrapper: shortKey })).rejects.toThrow(/the unwrapped data key is 16 bytes, not 32$/);
  });

  it('one bad marker among good ones: the whole render fails, the good values appear nowhere', async () => {
    const keys = countingKeys();
    const { markers } = await sealValues(['good-value-canary'], KID, keys);
    const err = await renderText(`${markers[0]}\n${junkMarker()}\n`, { unwrapper: keys }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SealedError);
    expect(JSON.stringify({ message: (err as Error).message, cause: String((err as Error).cause) })).not.toContain('good-value-canary');
  });

  it('seal --file: YAML and JSON parse errors give a position, never the text around it', async () => {
    const keys = countingKeys();
    await expect(sealDocument('a: 1\nb: [unclosed "hunter2-canary"\n', 'yaml', ['a'], KID, keys)).rejects.toThrow(/^not valid YAML at line \d+ column \d+ \([A-Z_]+\)$/);
    const err = await sealDocument('{"a": hunter2-canary}', 'json', ['a'], KID, keys).catch((e: unknown) => e);
    expect((err as Error).message).toBe('not valid JSON');
    await expect(sealDocument('a:\n  b: [1]\n', 'yaml', ['a.b'], KID, keys)).rejects.toThrow('--path a.b: it names a mapping or a list, not a value');
  });

  it('a value over 1 MiB is refused before the vault is asked to wrap', async () => {
    const keys = countingKeys();
    await expect(sealValues(['x'.repeat(1024 * 1024 + 1)], KID, keys)).rejects.toThrow('value 1 is 1048577 bytes; a sealed value is at most 1048576 bytes (1 MiB)');
    expect(keys.keys.size).toBe(0);
  });
});
