import { execFile } from 'node:child_process';
import { chmod, lstat, mkdir, mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findMount } from '../src/driver/mountinfo.js';
import { FLEXVOLUME_PARAMETERS_KEY } from '../src/flexvolume/options.js';
import { packageRoot } from '../src/package-info.js';
import { CLIENT_ID, CLIENT_SECRET, isRoot, rpcError, SECRET_VALUES, startHarness } from './support/harness.js';
import type { Harness } from './support/harness.js';

const run = promisify(execFile);

describe.skipIf(!isRoot)('FlexVolume: the kubelet executes the driver with the retired flexvol\'s options', () => {
  let h: Harness;
  let home: string;
  let exe: string;

  beforeAll(async () => {
    h = await startHarness();
    // Install the shipped exec script as the kubelet would find it, pointing at this checkout.
    home = await mkdtemp('/dev/shm/podvault-flex-home-');
    await mkdir(join(home, 'bin'));
    await symlink(process.execPath, join(home, 'node'));
    await symlink(join(packageRoot, 'bin', 'podvault.js'), join(home, 'bin', 'podvault.js'));
    exe = join(packageRoot, 'deploy', 'flexvolume', 'keyvault');
    await chmod(exe, 0o755);
  });
  afterAll(async () => {
    await h?.close();
    await rm(home, { recursive: true, force: true });
  });

  /** Run the executable exactly as the kubelet does: stdout and stderr are read together. */
  async function kubelet(...args: string[]): Promise<Record<string, unknown>> {
    const { stdout, stderr } = await run(exe, args, { env: { PODVAULT_HOME: home, PODVAULT_CSI_ENDPOINT: h.config.endpoint, PATH: process.env.PATH ?? '' } });
    expect(stderr).toBe('');
    expect(stdout.trim().split('\n')).toHaveLength(1);
    return JSON.parse(stdout) as Record<string, unknown>;
  }

  const b64 = (s: string) => Buffer.from(s).toString('base64');
  function options(extra: Record<string, string> = {}): string {
    return JSON.stringify({
      'kubernetes.io/fsType': '',
      'kubernetes.io/readwrite': 'ro',
      'kubernetes.io/pod.name': 'legacy-0',
      'kubernetes.io/pod.namespace': 'default',
      'kubernetes.io/pod.uid': 'uid-legacy-0',
      'kubernetes.io/serviceAccount.name': 'default',
      'kubernetes.io/pvOrVolumeName': 'kv',
      'kubernetes.io/secret/clientid': b64(CLIENT_ID),
      'kubernetes.io/secret/clientsecret': b64(CLIENT_SECRET),
      vaulturi: h.vault.url,
      tenantid: h.vault.tenantId,
      keyvaultobjectnames: 'db-password;db-user',
      keyvaultobjecttypes: 'secret;secret',
      keyvaultobjectaliases: 'password;user',
      keyvaultobjectversions: ';',
      ...extra,
    });
  }

  it('init reports no attach capability', async () => {
    expect(await kubelet('init')).toEqual({ status: 'Success', capabilities: { attach: false } });
  });

  it('mount publishes through the driver onto a tmpfs at the directory; unmount removes it', async () => {
    const dir = join(h.kubeletDir, 'pods', 'uid-legacy-0', 'volumes', 'podvault~keyvault', 'kv');
    await mkdir(dir, { recursive: true });
    expect(await kubelet('mount', dir, options())).toEqual({ status: 'Success' });
    expect(await readFile(join(dir, 'password'), 'utf8')).toBe(SECRET_VALUES.dbPassword);
    expect(await readFile(join(dir, 'user'), 'utf8')).toBe('app');
    expect((await findMount(dir))?.fsType).toBe('tmpfs');
    expect(await kubelet('unmount', dir)).toEqual({ status: 'Success' });
    expect(await findMount(dir)).toBeUndefined();
    await expect(lstat(dir)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('reports failures as one Failure object naming the problem, never the secret', async () => {
    const dir = join(h.kubeletDir, 'pods', 'uid-legacy-1', 'volumes', 'podvault~keyvault', 'kv');
    await mkdir(dir, { recursive: true });
    const bad = await kubelet('mount', dir, options({ keyvaultobjectnames: 'db-password;other-secret' }));
    expect(bad.status).toBe('Failure');
    expect(bad.message).toMatch(/secret "other-secret": HTTP 403/);
    expect(JSON.stringify(bad)).not.toContain(CLIENT_SECRET);
    const mismatch = await kubelet('mount', dir, options({ keyvaultobjecttypes: 'secret' }));
    expect(mismatch).toEqual({ status: 'Failure', message: 'option keyvaultobjecttypes has 1 entries for 2 keyvaultobjectnames' });
    expect(await kubelet('attach', dir)).toMatchObject({ status: 'Not supported' });
  });

  it('a CSI pod cannot pass FlexVolume parameters inline', async () => {
    const v = await h.volume();
    const err = await rpcError(h.client.publish({ ...v.request, volumeContext: { ...v.request.volumeContext, [FLEXVOLUME_PARAMETERS_KEY]: '{}' } }));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toMatch(/only accepted from the FlexVolume driver/);
  });
});
