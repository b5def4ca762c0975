import { randomBytes } from 'node:crypto';
import { ClientSecretCredential } from '@azure/identity';
import { KeyClient } from '@azure/keyvault-keys';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDevVault } from '../src/devvault/server.js';
import type { DevVault } from '../src/devvault/server.js';
import { parseSeed } from '../src/devvault/seed.js';
import { createLogger } from '../src/log.js';
import { AZURE_CLOUDS } from '../src/providers/azure/clouds.js';
import { findMarkers, KeyVaultDataKeys, openMarkers, renderText, resealText, SealedError, sealValues } from '../src/sealed/index.js';
import type { DataKeyUnwrapper } from '../src/sealed/index.js';
import { s5AesMarker } from './support/s5-aes.js';

const SEALER_SECRET = 'sealer-secret-Hj38-never-log-me';
const OTHER_SECRET = 'other-team-secret-Pz41-never-log-me';

const SEED = `
clients:
  - clientId: sealer
    clientSecret: ${SEALER_SECRET}
    read: []
    crypto: [{ role: crypto-service-encryption-user, keys: ["cfg"] }]
  - clientId: other-team
    clientSecret: ${OTHER_SECRET}
    read: []
    crypto: [{ role: crypto-service-encryption-user, keys: ["team-b"] }]
  - clientId: key-admin
    clientSecret: key-admin-secret
    crypto: [{ role: crypto-officer }]
keys:
  - name: cfg
    versions: 2
  - name: team-b
`;

/**
 * The sealed-values library through the real @azure/keyvault-keys SDK against dev-vault over
 * HTTPS: envelope round trips, one unwrap per data key, rotation, tampering, refusals.
 */
describe('sealed values against dev-vault', () => {
  let vault: DevVault;
  const logs: string[] = [];
  const keys = (clientId: string, secret: string): KeyVaultDataKeys =>
    new KeyVaultDataKeys({
      credential: new ClientSecretCredential(vault.tenantId, clientId, secret, { authorityHost: vault.url, disableInstanceDiscovery: true, tlsOptions: { ca: vault.caPem } }),
      settings: { caPem: vault.caPem, authorityHost: vault.url, allowedVaultOrigins: [vault.url], maxRetries: 0 },
      cloud: AZURE_CLOUDS[0]!,
      allowedOrigins: [vault.url],
      log: createLogger({ level: 'debug', destination: { write: (line: string) => void logs.push(line) } }),
      maxAttempts: 1,
    });
  let sealer: KeyVaultDataKeys;
  const unwraps = (): number => vault.vaultLog.filter((r) => r.path.endsWith('/unwrapkey')).length;
  const versions = (name: string): string[] => (vault.store.list('keys', name) ?? []).map((v) => v.version);

  beforeAll(async () => {
    vault = await startDevVault({ seed: parseSeed(SEED, 'sealed test seed') });
    sealer = keys('sealer', SEALER_SECRET);
  });
  afterAll(async () => {
    await vault?.close();
  });

  it('round-trips several values, multi-line, unicode and a 1 MiB value under one data key, with one unwrap', async () => {
    const big = 'x'.repeat(1024 * 1024 - 3) + 'é';
    const values = ['postgres://u:p@db/app', 'line one\nline two\r\n\ttabbed', 'ünïcødé ✓ 秘密 🔑', '', big];
    const { markers, versionedKeyId } = await sealValues(values, `${vault.url}/keys/cfg`, sealer);
    expect(versionedKeyId).toBe(`${vault.url}/keys/cfg/${versions('cfg')[1]}`);
    // One data key: every marker carries the same wrapped bytes, each its own nonce.
    const parsed = findMarkers(markers.join('\n'));
    expect(new Set(parsed.map((m) => Buffer.from(m.wrappedKey).toString('hex'))).size).toBe(1);
    expect(new Set(parsed.map((m) => Buffer.from(m.nonce).toString('hex'))).size).toBe(values.length);
    for (const m of markers) expect(m).toMatch(/^\{\{pv:[A-Za-z0-9_-]+\}\}$/);
    const text = `a: ${markers[0]}\nb: "${markers[1]}"\n  c: ${markers[2]} d: ${markers[3]}\ne: ${markers[4]}\nf: ${markers[0]}\n`;
    const found = findMarkers(text);
    expect(found.map((m) => [m.line, m.column])).toEqual([[1, 4], [2, 5], [3, 6], [3, 10 + markers[2]!.length], [4, 4], [5, 4]]);
    expect(found[0]?.keyId).toBe(versionedKeyId);
    const before = unwraps();
    const rendered = await renderText(text, { unwrapper: sealer });
    expect(unwraps() - before).toBe(1);
    expect(rendered).toBe(`a: ${values[0]}\nb: "${values[1]}"\n  c: ${values[2]} d: \ne: ${big}\nf: ${values[0]}\n`);
    expect(logs.join('\n')).not.toContain('postgres://');
  });

  it('two sealing runs are two data keys: two unwraps; each marker has its own nonce', async () => {
    const one = await sealValues(['a', 'a'], `${vault.url}/keys/cfg`, sealer);
    const two = await sealValues(['a'], `${vault.url}/keys/cfg`, sealer);
    expect(one.markers[0]).not.toBe(one.markers[1]);
    const before = unwraps();
    const values = await openMarkers(findMarkers([...one.markers, ...two.markers].join('\n')), sealer);
    expect(unwraps() - before).toBe(2);
    expect([...values.values()]).toEqual(['a', 'a', 'a']);
  });

  it('a rotated key: old markers still render with their version, new ones name the new version', async () => {
    const old = await sealValues(['before rotation'], `${vault.url}/keys/cfg`, sealer);
    const rotated = await new KeyClient(vault.url, new ClientSecretCredential(vault.tenantId, 'key-admin', 'key-admin-secret', { authorityHost: vault.url, disableInstanceDiscovery: true, tlsOptions: { ca: vault.caPem } }), {
      tlsOptions: { ca: vault.caPem },
      retryOptions: { maxRetries: 0 },
      disableChallengeResourceVerification: true,
    }).rotateKey('cfg');
    const fresh = await sealValues(['after rotation'], `${vault.url}/keys/cfg`, sealer);
    expect(fresh.versionedKeyId).toBe(rotated.id);
    expect(old.versionedKeyId).not.toBe(rotated.id);
    const pinned = await sealValues(['pinned'], old.versionedKeyId, sealer);
    expect(pinned.versionedKeyId).toBe(old.versionedKeyId);
    expect(await renderText(`${old.markers[0]} ${fresh.markers[0]} ${pinned.markers[0]}`, { unwrapper: sealer })).toBe('before rotation after rotation pinned');
  });

  it('a tampered marker fails authentication: one flipped byte in the ciphertext, an edited key id', async () => {
    const { markers, versionedKeyId } = await sealValues(['tamper-me'], `${vault.url}/keys/cfg`, sealer);
    const body = Buffer.from(markers[0]!.slice(5, -2), 'base64url');
    const flipped = Buffer.from(body);
    flipped[flipped.length - 20]! ^= 0x01;
    const text = `ok\n  x: {{pv:${flipped.toString('base64url')}}}\n`;
    await expect(renderText(text, { unwrapper: sealer })).rejects.toThrow(/^line 2 column 6: key .*\/keys\/cfg\/\w+: the marker does not authenticate/);
    // Another version of the same key, same length: the AAD differs (and the unwrap refuses).
    const otherVersion = versions('cfg').find((v) => !versionedKeyId.endsWith(v) && v.length === versionedKeyId.split('/').pop()!.length)!;
    const edited = Buffer.from(body.toString('latin1').replace(versionedKeyId.split('/').pop()!, otherVersion), 'latin1');
    const err = await renderText(`{{pv:${edited.toString('base64url')}}}`, { unwrapper: sealer }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SealedError);
    expect((err as Error).message).toMatch(new RegExp(`^line 1 column 1: key .*/keys/cfg/${otherVersion}: `));
    // An unwrapper that hands back the right data key whatever the id: the AAD still catches it.
    const { markers: good } = await sealValues(['bound'], versionedKeyId, sealer);
    const goodBody = Buffer.from(good[0]!.slice(5, -2), 'base64url');
    const realKey = await sealer.unwrap(versionedKeyId, 'RSA-OAEP-256', findMarkers(good[0]!)[0]!.wrappedKey);
    const lenient: DataKeyUnwrapper = { unwrap: async () => Buffer.from(realKey) };
    const swapped = Buffer.from(goodBody.toString('latin1').replace(versionedKeyId.split('/').pop()!, otherVersion), 'latin1');
    await expect(renderText(`{{pv:${swapped.toString('base64url')}}}`, { unwrapper: lenient })).rejects.toThrow(/does not authenticate/);
  });

  it('a marker of a key the caller may not unwrap is refused, naming the key and the permission', async () => {
    const { markers } = await sealValues(['team b only'], `${vault.url}/keys/team-b`, keys('other-team', OTHER_SECRET));
    const err = await renderText(`first line\nvalue=${markers[0]}`, { unwrapper: sealer }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SealedError);
    expect((err as SealedError).kind).toBe('permission-denied');
    expect((err as Error).message).toMatch(/^line 2 column 7: key https:\/\/127\.0\.0\.1:\d+\/keys\/team-b\/\w+: cannot unwrap the marker's data key: .*HTTP 403.*unwrapKey/);
    expect((err as Error).message).not.toContain('team b only');
  });

  it('a marker naming a vault outside the cloud and not allowed is refused before any token is asked', async () => {
    const { markers } = await sealValues(['v'], `${vault.url}/keys/cfg`, sealer);
    const body = Buffer.from(markers[0]!.slice(5, -2), 'base64url');
    const origin = new URL(vault.url).origin;
    const foreign = 'https://127.0.0.2:' + new URL(vault.url).port;
    expect(foreign.length).toBe(origin.length);
    const moved = Buffer.from(body.toString('latin1').replace(origin, foreign), 'latin1');
    const tokens = vault.tokenScopes.length;
    await expect(renderText(`{{pv:${moved.toString('base64url')}}}`, { unwrapper: sealer })).rejects.toThrow(/line 1 column 1: key https:\/\/127\.0\.0\.2:\d+\/keys\/cfg\/\w+: cannot unwrap .*outside vault\.azure\.net.*--allow-vault/);
    expect(vault.tokenScopes.length).toBe(tokens);
  });

  it('malformed markers name their line and column: unclosed, spanning lines, unknown version, bad key id, bad base64url', () => {
    const cases: Array<[string, RegExp]> = [
      ['a\nb {{pv:AAAA', /^line 2 column 3: malformed \{\{pv:…\}\} marker: the text ends/],
      ['{{pv:AAAA\nBBBB}}', /^line 1 column 1: .*markers do not span lines/],
      ['x {{pv:AA+A}}', /^line 1 column 3: .*character "\+" at column 10 is not base64url/],
      [`{{pv:${Buffer.from([2, 1, 0, 1, 65]).toString('base64url')}}}`, /format version 2 is not known/],
      [`{{pv:${Buffer.from([1, 9, 0, 1, 65]).toString('base64url')}}}`, /algorithm suite 9 is not known/],
      [`{{pv:${Buffer.concat([Buffer.from([1, 1, 0, 19]), Buffer.from('https://evil/keys/x'), Buffer.alloc(300)]).toString('base64url')}}}`, /key id "https:\/\/evil\/keys\/x" names no key version/],
      [`{{pv:${Buffer.concat([Buffer.from([1, 1, 0, 22]), Buffer.from('https://v.example/k/x1'), Buffer.alloc(300)]).toString('base64url')}}}`, /is not a Key Vault key URL/],
      [`{{pv:${Buffer.concat([Buffer.from([1, 1, 0, 30]), Buffer.from('https://v.example/keys/x/abc12'), Buffer.from([0, 7]), Buffer.alloc(300)]).toString('base64url')}}}`, /wrapped data key of 7 bytes/],
    ];
    for (const [text, message] of cases) {
      expect(() => findMarkers(text), text.slice(0, 40)).toThrow(message);
    }
  });

  it('s5 aes markers (plain and spaced) render with the s5 key, and reseal into pv markers under one data key', async () => {
    const s5Key = randomBytes(32).toString('hex');
    const { markers: pv } = await sealValues(['kept'], `${vault.url}/keys/cfg`, sealer);
    const text = `user: ${s5AesMarker('alice', s5Key)}\npass: "${s5AesMarker('p@ss "quoted"\nnext', s5Key, true)}"\nkeep: ${pv[0]}\n`;
    expect(await renderText(text, { unwrapper: sealer, s5AesKey: Buffer.from(s5Key, 'hex') })).toBe('user: alice\npass: "p@ss "quoted"\nnext"\nkeep: kept\n');
    await expect(renderText(text, { unwrapper: sealer })).rejects.toThrow(/^line 1 column 7: \{\{s5:…\}\} marker but no s5 AES key/);
    await expect(renderText(text, { unwrapper: sealer, s5AesKey: randomBytes(32) })).rejects.toThrow(/^line 1 column 7: .*does not authenticate under the given s5 AES key/);
    const resealed = await resealText(text, { s5AesKey: Buffer.from(s5Key, 'hex'), wrapper: sealer, keyId: `${vault.url}/keys/cfg` });
    expect(resealed.count).toBe(2);
    expect(resealed.text).not.toContain('s5:');
    expect(resealed.text).toContain(`keep: ${pv[0]}\n`);
    const before = unwraps();
    expect(await renderText(resealed.text, { unwrapper: sealer })).toBe('user: alice\npass: "p@ss "quoted"\nnext"\nkeep: kept\n');
    expect(unwraps() - before).toBe(2); // the resealed pair share one data key; the kept marker has its own
  });
});
