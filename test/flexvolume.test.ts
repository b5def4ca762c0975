import { execFile } from 'node:child_process';
import { chmod, lstat, mkdir, mkdtemp, readFile, rm, stat, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findMount } from '../src/driver/mountinfo.js';
import { FLEXVOLUME_PARAMETERS_KEY } from '../src/flexvolume/options.js';
import { packageRoot } from '../src/package-info.js';
import { POD_NAME_KEY, POD_NAMESPACE_KEY, POD_UID_KEY, SERVICE_ACCOUNT_KEY } from '../src/driver/publish-request.js';
import { CLIENT_ID, CLIENT_SECRET, isRoot, objectsParameter, rpcError, SECRET_VALUES, startHarness } from './support/harness.js';
import type { Harness } from './support/harness.js';

const run = promisify(execFile);

const VICTIM_VALUE = 'victim-value-Rr4-never-log';
const VICTIM_SP_SECRET = 'victim-sp-secret-Tt6-never-log';

/** A pod the API (here: the standalone directory) knows, with a podvault flexVolume `kv`. */
function flexPod(name: string, uid: string, namespace: string, opts: { readOnly?: boolean; label?: string; fsGroup?: number } = {}): object {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace, uid, labels: opts.label ? { aadpodidbinding: opts.label } : {} },
    spec: {
      nodeName: 'test-node',
      serviceAccountName: 'default',
      ...(opts.fsGroup === undefined ? {} : { securityContext: { fsGroup: opts.fsGroup } }),
      volumes: [{ name: 'kv', flexVolume: { driver: 'podvault/keyvault', readOnly: opts.readOnly ?? true, options: {} } }],
    },
  };
}

describe.skipIf(!isRoot)('FlexVolume: the kubelet executes the driver with the retired flexvol\'s options', () => {
  let h: Harness;
  let home: string;
  let exe: string;

  beforeAll(async () => {
    h = await startHarness();
    h.vault.store.setSecret('victim-secret', VICTIM_VALUE);
    h.vault.store.putClient({ clientId: 'sp-victim', clientSecret: VICTIM_SP_SECRET, managedIdentity: false, read: ['victim-*'] });
    await h.writeObjects('flex-pods.yaml', [
      flexPod('legacy-0', 'uid-legacy-0', 'default'),
      flexPod('legacy-1', 'uid-legacy-1', 'default'),
      flexPod('legacy-fsgroup', 'uid-legacy-fsgroup', 'default', { fsGroup: 4321 }),
      flexPod('writable-0', 'uid-writable-0', 'default', { readOnly: false }),
      flexPod('attacker-0', 'uid-attacker-0', 'team-a'),
      flexPod('victim-0', 'uid-victim-0', 'victim', { label: 'victim' }),
      { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'sp-victim', namespace: 'victim' }, stringData: { clientSecret: VICTIM_SP_SECRET } },
      { apiVersion: 'aadpodidentity.k8s.io/v1', kind: 'AzureIdentity', metadata: { name: 'victim-id', namespace: 'victim' }, spec: { type: 1, tenantID: h.vault.tenantId, clientID: 'sp-victim', clientPassword: { name: 'sp-victim', namespace: 'victim' } } },
      { apiVersion: 'aadpodidentity.k8s.io/v1', kind: 'AzureIdentityBinding', metadata: { name: 'victim-binding', namespace: 'victim' }, spec: { azureIdentity: 'victim-id', selector: 'victim' } },
    ]);
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

  it('takes the volume\'s group from the pod\'s spec.securityContext.fsGroup, never from the forgeable kubernetes.io/mounterArgs.FsGroup option', async () => {
    const dir = join(h.kubeletDir, 'pods', 'uid-legacy-fsgroup', 'volumes', 'podvault~keyvault', 'kv');
    await mkdir(dir, { recursive: true });
    // The pod's options overwrite the kubelet's key with a gid of its choosing: ignored.
    expect(await kubelet('mount', dir, options({ 'kubernetes.io/mounterArgs.FsGroup': '999' }))).toEqual({ status: 'Success' });
    for (const name of [dir, join(dir, 'password'), join(dir, 'user')]) expect((await stat(name)).gid).toBe(4321);
    expect((await stat(join(dir, 'password'))).mode & 0o070).toBe(0o040);
    expect(await kubelet('unmount', dir)).toEqual({ status: 'Success' });
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

  async function flexDir(uid: string): Promise<string> {
    const dir = join(h.kubeletDir, 'pods', uid, 'volumes', 'podvault~keyvault', 'kv');
    await mkdir(dir, { recursive: true });
    return dir;
  }

  it('an attacker pod whose options name a victim pod (pod.uid "") gets only its own identity, never the victim\'s secrets', async () => {
    const dir = await flexDir('uid-attacker-0');
    // The kubelet merges the pod's options over its own keys: this is what it passes then.
    const forgedKeys = {
      'kubernetes.io/pod.name': 'victim-0',
      'kubernetes.io/pod.namespace': 'victim',
      'kubernetes.io/pod.uid': '',
      'kubernetes.io/serviceAccount.name': 'default',
      keyvaultobjectnames: 'victim-secret',
      keyvaultobjecttypes: 'secret',
      keyvaultobjectaliases: 'stolen',
      keyvaultobjectversions: '',
    };
    const viaBinding = JSON.parse(options({ ...forgedKeys, usepodidentity: 'true' })) as Record<string, string>;
    for (const key of Object.keys(viaBinding)) if (key.startsWith('kubernetes.io/secret/')) delete viaBinding[key];
    const result = await kubelet('mount', dir, JSON.stringify(viaBinding));
    expect(result).toEqual({ status: 'Failure', message: 'podvault: no identity for pod team-a/attacker-0: the pod has no aadpodidbinding label' });
    await expect(lstat(join(dir, 'stolen'))).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await findMount(dir)).toBeUndefined();
    // With a service principal of its own (secretRef), it reads as that principal: dev-vault's 403 is
    // an authenticated caller without access (no token would be 401), so no token count is needed.
    const own = await kubelet('mount', dir, options(forgedKeys));
    expect(own.status).toBe('Failure');
    expect(own.message).toMatch(/secret "victim-secret": HTTP 403/);
    expect(h.logs.join('')).not.toContain(VICTIM_VALUE);
    // The driver still serves the legitimate pod.
    const legit = await flexDir('uid-legacy-1');
    expect(await kubelet('mount', legit, options())).toEqual({ status: 'Success' });
    expect(await kubelet('unmount', legit)).toEqual({ status: 'Success' });
  });

  it('the driver ignores pod keys a caller of the socket puts in a FlexVolume publish', async () => {
    const dir = await flexDir('uid-attacker-0');
    const parameters = { vaultUri: h.vault.url, tenantId: h.vault.tenantId, usePodIdentity: 'true', objects: objectsParameter([{ objectName: 'victim-secret' }]) };
    const err = await rpcError(
      h.client.publish({
        volumeId: 'flex-direct-0',
        targetPath: dir,
        volumeCapability: { mount: { fsType: '' }, accessMode: { mode: 'SINGLE_NODE_WRITER' } },
        readonly: true,
        volumeContext: { [FLEXVOLUME_PARAMETERS_KEY]: JSON.stringify(parameters), [POD_NAME_KEY]: 'victim-0', [POD_NAMESPACE_KEY]: 'victim', [POD_UID_KEY]: '', [SERVICE_ACCOUNT_KEY]: 'default' },
      }),
    );
    expect(err).toEqual({ code: status.PERMISSION_DENIED, details: 'no identity for pod team-a/attacker-0: the pod has no aadpodidbinding label' });
    expect(await findMount(dir)).toBeUndefined();
  });

  it('a mount directory whose uid no pod on this node has is refused, naming only that uid', async () => {
    const dir = await flexDir('uid-nobody');
    expect(await kubelet('mount', dir, options())).toEqual({ status: 'Failure', message: 'podvault: FlexVolume mount for pod uid uid-nobody: no pod with this uid runs on this node' });
  });

  it('a FlexVolume without readOnly: true is refused with one Failure naming readOnly: true', async () => {
    const dir = await flexDir('uid-writable-0');
    expect(await kubelet('mount', dir, options({ 'kubernetes.io/readwrite': 'rw' }))).toEqual({ status: 'Failure', message: 'the podvault flexVolume must set readOnly: true (podvault volumes are read-only)' });
    const missing = JSON.parse(options()) as Record<string, string>;
    delete missing['kubernetes.io/readwrite'];
    expect((await kubelet('mount', dir, JSON.stringify(missing))).status).toBe('Failure');
    // The pod forges the kubelet's key in its options; its spec (from the API) still says writable.
    const forged = await kubelet('mount', dir, options({ 'kubernetes.io/readwrite': 'ro' }));
    expect(forged).toEqual({ status: 'Failure', message: 'podvault: pod default/writable-0: volume kv must set flexVolume readOnly: true (podvault volumes are read-only)' });
    expect(await findMount(dir)).toBeUndefined();
  });

  it('a CSI pod cannot pass FlexVolume parameters inline', async () => {
    const v = await h.volume();
    const err = await rpcError(h.client.publish({ ...v.request, volumeContext: { ...v.request.volumeContext, [FLEXVOLUME_PARAMETERS_KEY]: '{}' } }));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toMatch(/only accepted from the FlexVolume driver/);
  });
});
