import { execFile, spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { status } from '@grpc/grpc-js';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDevVault } from '../src/devvault/server.js';
import type { DevVault } from '../src/devvault/server.js';
import { parseSeed } from '../src/devvault/seed.js';
import { CsiClient } from '../src/driver/client.js';
import { ephemeralVolume } from '../src/driver/kubelet-volume.js';
import { CLIENT_ID, CLIENT_SECRET, isRoot, objectsParameter, SECRET_VALUES, TEST_SEED } from './support/harness.js';

const run = promisify(execFile);
const BIN = join(import.meta.dirname, '..', 'bin', 'podvault.js');
/** Whether an unprivileged user can run this checkout (not when it lives under a 0700 home). */
const nobodyCanRun = isRoot && spawnSync('runuser', ['-u', 'nobody', '--', process.execPath, BIN, '--version']).status === 0;

describe('the podvault command', () => {
  it.each(['driver', 'dev-vault', 'demo', 'kms-plugin'])('%s --help describes the command', async (command) => {
    const { stdout } = await run(process.execPath, [BIN, command, '--help']);
    expect(stdout).toContain(`Usage: podvault ${command}`);
  });

  it('npx podvault runs the same entry point from the checkout, as the README says', async () => {
    const { stdout } = await run('npx', ['--no-install', 'podvault', 'flexvolume', 'init'], { cwd: join(import.meta.dirname, '..') });
    expect(JSON.parse(stdout)).toEqual({ status: 'Success', capabilities: { attach: false } });
  });

  it.skipIf(!nobodyCanRun)('the demo without root falls back to /dev/shm and says so', async () => {
    const { stdout } = await run('runuser', ['-u', 'nobody', '--', process.execPath, BIN, 'demo'], { timeout: 60_000 });
    expect(stdout).toMatch(/not root: falling back to a directory under \/dev\/shm/);
    expect(stdout).toMatch(/cat db-username {2}-> app_rw/);
    expect(stdout).toMatch(/NodeUnpublishVolume: OK; target removed=true/);
  });

  it('refuses a bad flag value with a message naming it', async () => {
    const err = await run(process.execPath, [BIN, 'driver', '--standalone', '/nonexistent', '--tmpfs-size', 'lots']).catch((e: { code: number; stderr: string }) => e);
    expect((err as { code: number }).code).toBe(1);
    expect((err as { stderr: string }).stderr).toMatch(/--tmpfs-size: size "lots"/);
  });

  it('demo --kms: a Secret encrypted through the plugin, a key rotation, the old Secret still readable', async () => {
    const { stdout } = await run(process.execPath, [BIN, 'demo', '--kms'], { timeout: 60_000 });
    expect(stdout).toMatch(/kms-plugin {7}unix:\/\/\/dev\/shm\/podvault-kms-demo-\w+\/kms\.sock: Status version=v2 healthz=ok/);
    expect(stdout).toMatch(/Status key_id=[0-9a-f]{16}… \(changed: true\)/);
    expect(stdout).toMatch(/read \/registry\/secrets\/default\/db-creds -> the same value, unwrapped with the old key version/);
    expect(stdout).not.toContain('demo-password-123');
    // With etcd on PATH (CI installs it for the etcd-audit tests) it ends with the rotation's gate.
    if (!stdout.includes('etcd-audit       skipped: no etcd on PATH')) {
      expect(stdout).toMatch(/secrets default\/db-creds {2}\(kms-v2 podvault [0-9a-f]{64}\)\n\s*\n\s*Result: 1 under another key \(exit 4\)/);
      expect(stdout).toMatch(/etcd-audit {7}again: Result: every object is under key id [0-9a-f]{64} \(exit 0\)/);
    }
  });

  it('npm run demo\'s command runs the whole path and exits 0', async () => {
    const { stdout } = await run(process.execPath, [BIN, 'demo'], { timeout: 60_000 });
    expect(stdout).toMatch(/NodePublishVolume pod default\/web-0, class app-secrets, identity from binding app-identity-binding: OK/);
    expect(stdout).toMatch(/cat db-username {2}-> app_rw/);
    // The sealed config file: the class's secret escaped for YAML and the sealed value opened as the pod.
    expect(stdout).toMatch(/ {4}password: "correct-horse-battery-staple"\n.*\n.*\n {4}password: "smtp-pw-Zr82-demo"/);
    expect(stdout).toMatch(/NodeUnpublishVolume: OK; target removed=true, still mounted=false/);
    if (isRoot) expect(stdout).toMatch(/mount {12}tmpfs podvault on .*nosuid,nodev,noexec/);
  });
});

describe.skipIf(!isRoot)('podvault driver as its own process', () => {
  let vault: DevVault;
  let work: string;

  beforeAll(async () => {
    vault = await startDevVault({ seed: parseSeed(TEST_SEED, 'test seed') });
    work = await mkdtemp('/dev/shm/podvault-cli-');
  });
  afterAll(async () => {
    await vault?.close();
    await rm(work, { recursive: true, force: true });
  });

  it('serves a publish over its socket, logs JSON without secrets, and removes the socket on SIGTERM', async () => {
    const classes = join(work, 'classes');
    const kubeletDir = join(work, 'kubelet');
    await mkdir(classes);
    await mkdir(kubeletDir);
    await writeFile(join(work, 'ca.pem'), vault.caPem);
    await writeFile(
      join(classes, 'app.yaml'),
      stringify({
        apiVersion: 'secrets-store.csi.x-k8s.io/v1',
        kind: 'SecretProviderClass',
        metadata: { name: 'app' },
        spec: { provider: 'azure', parameters: { vaultUri: vault.url, tenantId: vault.tenantId, objects: objectsParameter([{ objectName: 'db-password' }]) } },
      }),
    );
    const socket = join(work, 'csi.sock');
    await writeFile(socket, ''); // not a socket: must be refused, not deleted
    const refused = await run(process.execPath, [BIN, 'driver', '--standalone', classes, '--endpoint', `unix://${socket}`]).catch((e: { stderr: string }) => e);
    expect((refused as { stderr: string }).stderr).toMatch(/exists and is not a socket/);
    await rm(socket);

    const child = spawn(process.execPath, [BIN, 'driver', '--standalone', classes, '--kubelet-dir', kubeletDir, '--ca-file', join(work, 'ca.pem'), '--authority-host', vault.url, '--allow-vault-uri', vault.url, '--log-level', 'debug'], {
      env: { ...process.env, CSI_ENDPOINT: `unix://${socket}`, NODE_NAME: 'node-a' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let logs = '';
    child.stdout.on('data', (d: Buffer) => (logs += d.toString()));
    child.stderr.on('data', (d: Buffer) => (logs += d.toString()));
    for (let i = 0; i < 100 && !logs.includes('podvault driver serving'); i++) await new Promise((r) => setTimeout(r, 100));

    const client = new CsiClient(`unix://${socket}`);
    expect((await client.nodeGetInfo()).nodeId).toBe('node-a');
    const v = ephemeralVolume({ kubeletDir, pod: { namespace: 'default', name: 'p', uid: 'uid-cli-1', serviceAccount: 'sa' }, volumeName: 'v', className: 'app', secrets: { clientid: CLIENT_ID, clientsecret: CLIENT_SECRET } });
    await mkdir(join(v.targetPath, '..'), { recursive: true });
    await client.publish(v.request);
    expect(await readFile(join(v.targetPath, 'db-password'), 'utf8')).toBe(SECRET_VALUES.dbPassword);
    await client.unpublish({ volumeId: v.volumeId, targetPath: v.targetPath });
    client.close();

    child.kill('SIGTERM');
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code).toBe(0);
    expect(existsSync(socket)).toBe(false);
    const lines = logs.trim().split('\n').map((l) => JSON.parse(l) as { msg: string; requestId?: string });
    expect(lines.some((l) => l.msg === 'published' && typeof l.requestId === 'string')).toBe(true);
    expect(logs).not.toContain(SECRET_VALUES.dbPassword);
    expect(logs).not.toContain(CLIENT_SECRET);
  });

  it.skipIf(!nobodyCanRun)('fails a publish with FAILED_PRECONDITION when it runs without root, and keeps serving', async () => {
    const dir = await mkdtemp('/dev/shm/podvault-nonroot-');
    await chmod(dir, 0o777);
    const kubeletDir = join(dir, 'kubelet');
    await mkdir(kubeletDir, { mode: 0o755 });
    await writeFile(join(dir, 'ca.pem'), vault.caPem);
    await writeFile(
      join(dir, 'app.yaml'),
      stringify({ kind: 'SecretProviderClass', metadata: { name: 'app' }, spec: { provider: 'azure', parameters: { vaultUri: vault.url, tenantId: vault.tenantId, objects: objectsParameter([{ objectName: 'db-password' }]) } } }),
    );
    const socket = join(dir, 'csi.sock');
    const child = spawn('runuser', ['-u', 'nobody', '--', process.execPath, BIN, 'driver', '--standalone', dir, '--endpoint', `unix://${socket}`, '--kubelet-dir', kubeletDir, '--ca-file', join(dir, 'ca.pem'), '--authority-host', vault.url, '--allow-vault-uri', vault.url], { stdio: 'ignore' });
    try {
      for (let i = 0; i < 100 && !existsSync(socket); i++) await new Promise((r) => setTimeout(r, 100));
      const client = new CsiClient(`unix://${socket}`);
      const v = ephemeralVolume({ kubeletDir, pod: { namespace: 'default', name: 'p', uid: 'uid-nonroot', serviceAccount: 'sa' }, volumeName: 'v', className: 'app', secrets: { clientid: CLIENT_ID, clientsecret: CLIENT_SECRET } });
      await mkdir(join(v.targetPath, '..'), { recursive: true, mode: 0o755 });
      const err = await client.publish(v.request).then(() => undefined, (e: { code: number; details: string }) => e);
      expect(err?.code).toBe(status.FAILED_PRECONDITION);
      expect(err?.details).toMatch(/not running as root; run it in a privileged container/);
      expect((await client.probe()).ready?.value).toBe(true);
      client.close();
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      await rm(dir, { recursive: true, force: true });
    }
  });
});
