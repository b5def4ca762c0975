import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDevVault } from '../src/devvault/server.js';
import type { DevVault } from '../src/devvault/server.js';
import { parseSeed } from '../src/devvault/seed.js';
import { s5AesMarker } from './support/s5-aes.js';

const BIN = join(import.meta.dirname, '..', 'bin', 'podvault.js');
const SEALER_SECRET = 'cli-sealer-secret-Wq72-never-log-me';
const OTHER_SECRET = 'cli-other-secret-Tn55-never-log-me';

const SEED = `
clients:
  - clientId: cli-sealer
    clientSecret: ${SEALER_SECRET}
    read: []
    crypto: [{ role: crypto-service-encryption-user, keys: ["app-config"] }]
  - clientId: cli-other
    clientSecret: ${OTHER_SECRET}
    read: []
    crypto: [{ role: crypto-service-encryption-user, keys: ["billing"] }]
keys:
  - name: app-config
  - name: billing
`;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * `podvault seal`, `render` and `reseal` through bin/podvault.js, as a user runs them: exit codes,
 * messages (FILE:LINE:COL, no stack trace, no value), files written only on success.
 */
describe('podvault seal / render / reseal CLI', () => {
  let vault: DevVault;
  let work: string;

  const run = (args: string[], input = '', env: Record<string, string> = {}): Promise<Run> =>
    new Promise((resolve, reject) => {
      const clean = { ...process.env };
      for (const name of ['AZURE_CLIENT_ID', 'AZURE_TENANT_ID', 'AZURE_FEDERATED_TOKEN_FILE', 'AZURE_CLIENT_SECRET', 'S5_AES_KEY']) delete clean[name];
      const child = spawn(process.execPath, [BIN, ...args], { env: { ...clean, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      child.once('error', reject);
      child.once('exit', (code) => resolve({ code, stdout, stderr }));
      child.stdin.end(input);
    });
  const vaultArgs = (azureJson = 'sealer.json'): string[] => ['--config-file-path', join(work, azureJson), '--ca-file', join(work, 'ca.pem'), '--authority-host', vault.url, '--allow-vault', vault.url];
  const key = (name = 'app-config'): string => `${vault.url}/keys/${name}`;
  const seal = async (value: string, name = 'app-config', azureJson = 'sealer.json'): Promise<string> => {
    const r = await run(['seal', '--key', key(name), ...vaultArgs(azureJson)], value);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    return r.stdout.trim();
  };

  beforeAll(async () => {
    vault = await startDevVault({ seed: parseSeed(SEED, 'sealed cli seed') });
    work = await mkdtemp(join(tmpdir(), 'podvault-sealed-'));
    await writeFile(join(work, 'ca.pem'), vault.caPem);
    const azureJson = (clientId: string, secret: string): string => JSON.stringify({ cloud: 'AzurePublicCloud', tenantId: vault.tenantId, aadClientId: clientId, aadClientSecret: secret });
    await writeFile(join(work, 'sealer.json'), azureJson('cli-sealer', SEALER_SECRET), { mode: 0o600 });
    await writeFile(join(work, 'other.json'), azureJson('cli-other', OTHER_SECRET), { mode: 0o600 });
  }, 60_000);
  afterAll(async () => {
    await vault?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('seal reads stdin, trims it, prints one marker naming the current version; render -o writes the file', async () => {
    const marker = await seal('  hunter2 "quoted"\n');
    expect(marker).toMatch(/^\{\{pv:[A-Za-z0-9_-]+\}\}$/);
    const untrimmed = (await run(['seal', '--no-trim', '--key', key(), ...vaultArgs()], ' x\n')).stdout.trim();
    const file = join(work, 'app.conf');
    await writeFile(file, `# app\npassword = ${marker}\nraw=[${untrimmed}]\n`);
    const r = await run(['render', file, '-o', join(work, 'app.rendered'), ...vaultArgs()]);
    expect(r).toMatchObject({ code: 0, stdout: '', stderr: '' });
    expect(await readFile(join(work, 'app.rendered'), 'utf8')).toBe('# app\npassword = hunter2 "quoted"\nraw=[ x\n]\n');
    const stdout = await run(['render', ...vaultArgs()], `v=${marker}`);
    expect(stdout.stdout).toBe('v=hunter2 "quoted"');
  });

  it('seal --file --path on YAML keeps comments and order; all values under one data key, rendered with one unwrap', async () => {
    const yamlFile = join(work, 'config.yaml');
    await writeFile(
      yamlFile,
      `# Application settings (committed)
db:
  host: db.internal   # plain
  password: "s3cr3t: with # and 'quotes'"
  port: 5432
servers:
  - name: a
    token: tok-a
  - name: b
    token: |
      multi
      line
`,
    );
    const r = await run(['seal', '--key', key(), '--file', yamlFile, '--path', 'db.password', '--path', 'servers.0.token', '--path', 'servers.1.token', '-i', ...vaultArgs()]);
    expect(r).toMatchObject({ code: 0, stderr: '', stdout: '' });
    const sealed = await readFile(yamlFile, 'utf8');
    expect(sealed).toContain('# Application settings (committed)');
    expect(sealed).toContain('host: db.internal # plain');
    expect(sealed).not.toContain('s3cr3t');
    expect(sealed).not.toContain('tok-a');
    expect(sealed.match(/"\{\{pv:[A-Za-z0-9_-]+\}\}"/g)).toHaveLength(3);
    const before = vault.vaultLog.filter((x) => x.path.endsWith('/unwrapkey')).length;
    const rendered = await run(['render', yamlFile, ...vaultArgs()]);
    expect(rendered.code).toBe(0);
    expect(vault.vaultLog.filter((x) => x.path.endsWith('/unwrapkey')).length - before).toBe(1);
    expect(rendered.stdout).toContain(`password: "s3cr3t: with # and 'quotes'"`);
    expect(rendered.stdout).toContain('token: "tok-a"');
    expect(rendered.stdout).toContain('token: "multi\nline\n"');
    const missing = await run(['seal', '--key', key(), '--file', yamlFile, '--path', 'db.nope', ...vaultArgs()]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe(`podvault: ${yamlFile}: --path db.nope: no such key in the file (at "nope")\n`);
  });

  it('seal --file on JSON keeps its indentation', async () => {
    const jsonFile = join(work, 'settings.json');
    await writeFile(jsonFile, '{\n    "api": {\n        "key": "k-123",\n        "url": "https://x"\n    }\n}\n');
    const r = await run(['seal', '--key', key(), '--file', jsonFile, '--path', 'api.key', ...vaultArgs()]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^\{\n {4}"api": \{\n {8}"key": "\{\{pv:[A-Za-z0-9_-]+\}\}",\n {8}"url": "https:\/\/x"\n {4}\}\n\}\n$/);
    expect((await run(['render', ...vaultArgs()], r.stdout)).stdout).toContain('"key": "k-123"');
  });

  it('a tampered marker: FILE:LINE:COL and the cause, exit 1, no stack trace, -i leaves the file untouched', async () => {
    const good = await seal('first');
    const victim = await seal('second');
    const body = Buffer.from(victim.slice(5, -2), 'base64url');
    body[body.length - 1]! ^= 0x80;
    const file = join(work, 'tampered.env');
    const original = `A=${good}\n\n   B=${`{{pv:${body.toString('base64url')}}}`}\n`;
    await writeFile(file, original);
    const before = await stat(file);
    const r = await run(['render', file, '-i', ...vaultArgs()]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^podvault: ${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:3:6: key https://127\\.0\\.0\\.1:\\d+/keys/app-config/\\w+: the marker does not authenticate .*\\n$`));
    expect(r.stderr).not.toMatch(/\bat .*\.js:\d+/);
    expect(r.stderr).not.toContain('first');
    expect(await readFile(file, 'utf8')).toBe(original);
    expect((await stat(file)).mtimeMs).toBe(before.mtimeMs);
    const out = join(work, 'never-written');
    expect((await run(['render', file, '-o', out, ...vaultArgs()])).code).toBe(1);
    await expect(stat(out)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('a marker of a key the caller may not unwrap: refused, naming the key and what to grant', async () => {
    const billing = await seal('billing-only', 'billing', 'other.json');
    const r = await run(['render', ...vaultArgs()], `x: 1\ny: ${billing}\n`);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^podvault: <stdin>:2:4: key https:\/\/127\.0\.0\.1:\d+\/keys\/billing\/\w+: cannot unwrap the marker's data key: .*HTTP 403: the identity may not unwrapKey with this key; grant it Key Vault Crypto Service Encryption User/);
    expect(r.stdout).toBe('');
    expect(r.stderr).not.toContain('billing-only');
  });

  it('without --allow-vault a dev-vault origin is refused before a token is sent there', async () => {
    const marker = await seal('v');
    const tokens = vault.tokenScopes.length;
    const r = await run(['render', '--config-file-path', join(work, 'sealer.json'), '--ca-file', join(work, 'ca.pem'), '--authority-host', vault.url], marker);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^podvault: <stdin>:1:1: key .*: cannot unwrap the marker's data key: vault https:\/\/127\.0\.0\.1:\d+ is outside vault\.azure\.net; .*--allow-vault/);
    expect(vault.tokenScopes.length).toBe(tokens);
  });

  it('a service principal from AZURE_TENANT_ID/AZURE_CLIENT_ID/AZURE_CLIENT_SECRET, no flag naming a secret', async () => {
    const env = { AZURE_TENANT_ID: vault.tenantId, AZURE_CLIENT_ID: 'cli-sealer', AZURE_CLIENT_SECRET: SEALER_SECRET };
    const args = ['--ca-file', join(work, 'ca.pem'), '--authority-host', vault.url, '--allow-vault', vault.url];
    const sealed = await run(['seal', '--key', key(), ...args], 'from-env', env);
    expect(sealed.code).toBe(0);
    expect((await run(['render', ...args], sealed.stdout, env)).stdout).toBe('from-env\n');
  });

  it('s5 aes markers render with S5_AES_KEY and reseal into pv markers; a wrong key names the line', async () => {
    const s5Key = randomBytes(32).toString('hex');
    const file = join(work, 's5.yaml');
    const original = `user: ${s5AesMarker('alice', s5Key)}\npass: ${s5AesMarker('p@ss', s5Key, true)}\n`;
    await writeFile(file, original);
    const rendered = await run(['render', file], '', { S5_AES_KEY: s5Key });
    expect(rendered).toMatchObject({ code: 0, stdout: 'user: alice\npass: p@ss\n' });
    const wrong = await run(['render', file], '', { S5_AES_KEY: randomBytes(32).toString('hex') });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toBe(`podvault: ${file}:1:7: {{s5:…}} marker (aes engine): it does not authenticate under the given s5 AES key (another key, or an edited marker)\n`);
    const noKey = await run(['render', file]);
    expect(noKey.stderr).toContain(`${file}:1:7: {{s5:…}} marker but no s5 AES key`);
    const resealed = await run(['reseal', file, '-i', '--key', key(), ...vaultArgs()], '', { S5_AES_KEY: s5Key });
    expect(resealed.code).toBe(0);
    expect(resealed.stderr).toMatch(/^podvault reseal: 2 s5 marker\(s\) resealed with https:\/\/127\.0\.0\.1:\d+\/keys\/app-config\/\w+\n$/);
    const now = await readFile(file, 'utf8');
    expect(now).toMatch(/^user: \{\{pv:[A-Za-z0-9_-]+\}\}\npass: \{\{pv:[A-Za-z0-9_-]+\}\}\n$/);
    expect((await run(['render', file, ...vaultArgs()])).stdout).toBe('user: alice\npass: p@ss\n');
  });

  it('flag errors exit 1 with a message: -o with -i, -i on stdin, a bad key URL, a file over 64 MiB, a FIFO, a bad s5 key (not echoed)', async () => {
    const both = await run(['render', join(work, 'app.conf'), '-o', 'x', '-i']);
    expect(both).toMatchObject({ code: 1, stderr: 'podvault: give -o/--output or -i/--in-place, not both\n' });
    expect((await run(['render', '-i'])).stderr).toBe('podvault: -i/--in-place needs a FILE (stdin cannot be rewritten)\n');
    const badKey = await run(['seal', '--key', 'https://v.example/secrets/x', ...vaultArgs()], 'v');
    expect(badKey.code).toBe(1);
    expect(badKey.stderr).toMatch(/^podvault: --key "https:\/\/v\.example\/secrets\/x" must be https:\/\/<vault>\/keys\/<name>\[\/<version>\]/);
    const huge = join(work, 'huge.yaml');
    await writeFile(huge, '');
    await truncate(huge, 65 * 1024 * 1024);
    expect(await run(['render', huge])).toMatchObject({ code: 1, stderr: `podvault: ${huge}: larger than 67108864 bytes\n` });
    const fifo = join(work, 'fifo');
    execFileSync('mkfifo', [fifo]);
    expect(await run(['render', fifo])).toMatchObject({ code: 1, stderr: `podvault: ${fifo}: not a regular file\n` });
    const badS5 = await run(['render'], 'x', { S5_AES_KEY: 'not-hex-secret-value' });
    expect(badS5.code).toBe(1);
    expect(badS5.stderr).not.toContain('not-hex-secret-value');
  });
});
