import { lstat, mkdir, readFile, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { versionId } from '../src/devvault/seed.js';
import { findMount } from '../src/driver/mountinfo.js';
import type { PublishArgs } from '../src/driver/client.js';
import { CLIENT_ID, CLIENT_SECRET, isRoot, objectsParameter, rpcError, startHarness } from './support/harness.js';
import type { Harness, ObjectSpec } from './support/harness.js';

let h: Harness;

beforeAll(async () => {
  h = await startHarness();
  await h.writeClass('app', h.vaultParameters([{ objectName: 'db-user' }]));
});
afterAll(async () => {
  await h?.close();
});

type Mutation = (req: PublishArgs) => PublishArgs;

describe('a malformed NodePublishVolume is refused with the status and field the CSI spec asks for', () => {
  const cases: Array<[string, Mutation, number, RegExp]> = [
    ['no volume_id', (r) => ({ ...r, volumeId: '' }), status.INVALID_ARGUMENT, /volume_id is required/],
    ['no target_path', (r) => ({ ...r, targetPath: '' }), status.INVALID_ARGUMENT, /target_path is required/],
    ['no volume_capability', (r) => ({ ...r, volumeCapability: null }), status.INVALID_ARGUMENT, /volume_capability is required/],
    ['block access', (r) => ({ ...r, volumeCapability: { block: {}, accessMode: { mode: 'SINGLE_NODE_WRITER' } } }), status.INVALID_ARGUMENT, /block access is not supported/],
    ['readonly false', (r) => ({ ...r, readonly: false }), status.INVALID_ARGUMENT, /set readOnly: true/],
    ['no volume_context', (r) => ({ ...r, volumeContext: {} }), status.INVALID_ARGUMENT, /volume_context is required/],
    ['no secretProviderClass', (r) => ({ ...r, volumeContext: { ...r.volumeContext, secretProviderClass: '' } }), status.INVALID_ARGUMENT, /secretProviderClass is required/],
    ['no pod info', (r) => ({ ...r, volumeContext: { secretProviderClass: 'app' } }), status.INVALID_ARGUMENT, /podInfoOnMount: true/],
    ['target outside the kubelet dir', (r) => ({ ...r, targetPath: '/etc/podvault-test/mount' }), status.INVALID_ARGUMENT, /must lie under the kubelet directory/],
    ['target with ..', (r) => ({ ...r, targetPath: `${h.kubeletDir}/pods/../../../etc/mount` }), status.INVALID_ARGUMENT, /normalised path/],
    ['relative target', (r) => ({ ...r, targetPath: 'pods/x/mount' }), status.INVALID_ARGUMENT, /absolute path/],
    // Only the kubelet's own shapes: never a pod's emptyDir, another plugin's directory or the pods directory itself.
    ['target in a pod\'s emptyDir', (r) => ({ ...r, targetPath: r.targetPath!.replace('kubernetes.io~csi/secrets/mount', 'kubernetes.io~empty-dir/data/mount') }), status.INVALID_ARGUMENT, /must be a kubelet volume path/],
    ['target <kubelet>/pods', (r) => ({ ...r, targetPath: `${h.kubeletDir}/pods` }), status.INVALID_ARGUMENT, /must be a kubelet volume path/],
    ['target one level too deep', (r) => ({ ...r, targetPath: `${r.targetPath!}/deeper` }), status.INVALID_ARGUMENT, /must be a kubelet volume path/],
    ['a CSI publish at a FlexVolume directory', (r) => ({ ...r, targetPath: r.targetPath!.replace('kubernetes.io~csi/secrets/mount', 'podvault~keyvault/secrets') }), status.INVALID_ARGUMENT, /a CSI publish must target/],
    // The pod uid in the volume context must be the one the kubelet put in the path.
    ['pod uid not the target path\'s', (r) => ({ ...r, volumeContext: { ...r.volumeContext, 'csi.storage.k8s.io/pod.uid': '11111111-2222-4333-8444-555555555555' } }), status.INVALID_ARGUMENT, /pod\.uid must be the pod uid of target_path/],
    ['no pod uid', (r) => ({ ...r, volumeContext: { ...r.volumeContext, 'csi.storage.k8s.io/pod.uid': '' } }), status.INVALID_ARGUMENT, /pod\.uid must be the pod uid of target_path/],
  ];
  it.each(cases)('%s', async (_name, mutate, code, message) => {
    const v = await h.volume();
    const err = await rpcError(h.client.publish(mutate(v.request)));
    expect(err.code).toBe(code);
    expect(err.details).toMatch(message);
    await expect(lstat(v.targetPath)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('refuses a target path that passes through a symbolic link', async () => {
    const v = await h.volume();
    const outside = join(h.kubeletDir, '..', 'elsewhere');
    await mkdir(outside, { recursive: true });
    const linkParent = join(h.kubeletDir, 'pods', 'linked');
    await symlink(outside, linkParent);
    const err = await rpcError(h.client.publish({ ...v.request, targetPath: join(linkParent, 'mount') }));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toMatch(/symbolic link/);
    await expect(lstat(join(outside, 'mount'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('class and vault problems name the class, object and field', () => {
  async function publishWith(parameters: Record<string, string>, secrets?: Record<string, string>, provider?: string): Promise<{ code: number; details: string; target: string }> {
    const name = `c${Math.random().toString(36).slice(2, 10)}`;
    await h.writeClass(name, parameters, provider ? { provider } : {});
    const v = await h.volume({ className: name, ...(secrets ? { secrets } : {}) });
    const err = await rpcError(h.client.publish(v.request));
    return { ...err, target: v.targetPath };
  }
  const objects = (list: ObjectSpec[]): Record<string, string> => h.vaultParameters(list);

  it('NOT_FOUND for a class that does not exist, with its name and namespace', async () => {
    const v = await h.volume({ className: 'no-such-class' });
    const err = await rpcError(h.client.publish(v.request));
    expect(err.code).toBe(status.NOT_FOUND);
    expect(err.details).toMatch(/SecretProviderClass "no-such-class" not found in namespace "default"/);
  });

  const invalid: Array<[string, () => Record<string, string>, RegExp]> = [
    ['bad objects YAML', () => ({ ...objects([]), objects: 'array: [unclosed' }), /parameter objects is not valid YAML/],
    ['no objects array', () => ({ ...objects([]), objects: 'foo: bar' }), /non-empty "array:"/],
    ['alias with ..', () => objects([{ objectName: 'db-user', objectAlias: '../../etc/passwd' }]), /objects\[0\] \(db-user\): field objectAlias must not contain a '\.\.' segment/],
    ['absolute alias', () => objects([{ objectName: 'db-user', objectAlias: '/etc/passwd' }]), /objects\[0\] \(db-user\): field objectAlias must be a relative path/],
    ['duplicate file names', () => objects([{ objectName: 'db-user' }, { objectName: 'db-password', objectAlias: 'db-user' }]), /objects\[1\] \(db-password\): file name "db-user" is already used by objects\[0\]/],
    ['unknown object type', () => objects([{ objectName: 'db-user', objectType: 'blob' }]), /objects\[0\] \(db-user\): field objectType "blob" must be one of secret, key, cert/],
    ['bad encoding', () => objects([{ objectName: 'db-user', objectEncoding: 'rot13' }]), /field objectEncoding "rot13"/],
    ['bad filePermission', () => objects([{ objectName: 'db-user', filePermission: '999' }]), /field filePermission must be an octal mode/],
    ['bad keyvaultName', () => ({ keyvaultName: 'a_b', tenantId: 't', objects: objectsParameter([{ objectName: 'x' }]) }), /parameter keyvaultName "a_b"/],
    ['no tenant', () => ({ keyvaultName: 'abc', objects: objectsParameter([{ objectName: 'x' }]) }), /parameter tenantId is required/],
    ['unknown cloud', () => ({ ...objects([{ objectName: 'db-user' }]), cloudName: 'Mars' }), /parameter cloudName "Mars"/],
    ['vaultUri not allowed', () => ({ ...objects([{ objectName: 'db-user' }]), vaultUri: 'https://attacker.example:8443' }), /--allow-vault-uri/],
    ['http vaultUri', () => ({ ...objects([{ objectName: 'db-user' }]), vaultUri: 'http://127.0.0.1:1' }), /vaultUri must be an https/],
  ];
  it.each(invalid)('INVALID_ARGUMENT: %s', async (_name, parameters, message) => {
    const err = await publishWith(parameters());
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toMatch(message);
    await expect(lstat(err.target)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('INVALID_ARGUMENT for a provider podvault does not serve', async () => {
    const err = await publishWith(objects([{ objectName: 'db-user' }]), undefined, 'vault');
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toMatch(/names provider "vault"; podvault serves azure/);
  });

  it('PERMISSION_DENIED naming the pod when no identity applies', async () => {
    const err = await publishWith(objects([{ objectName: 'db-user' }]), {});
    expect(err.code).toBe(status.PERMISSION_DENIED);
    expect(err.details).toMatch(/no identity for pod default\/pod-\d+: the pod does not exist in the Kubernetes API/);
  });

  it('PERMISSION_DENIED when Entra refuses the client secret, without echoing it', async () => {
    const err = await publishWith(objects([{ objectName: 'db-user' }]), { clientid: CLIENT_ID, clientsecret: 'wrong-secret-xyz' });
    expect(err.code).toBe(status.PERMISSION_DENIED);
    expect(err.details).toMatch(/could not get a token from Entra ID/);
    expect(err.details).not.toContain('wrong-secret-xyz');
  });

  it('PERMISSION_DENIED naming vault, object and status when the identity may not read the object', async () => {
    const err = await publishWith(objects([{ objectName: 'db-user' }, { objectName: 'other-secret' }]));
    expect(err.code).toBe(status.PERMISSION_DENIED);
    expect(err.details).toContain(`vault ${h.vault.url}: secret "other-secret": HTTP 403`);
    expect(err.details).not.toContain('for-other-only');
  });

  it('NOT_FOUND naming the object, or the version, that Key Vault does not have', async () => {
    const missing = await publishWith(objects([{ objectName: 'db-nothing' }]));
    expect(missing.code).toBe(status.NOT_FOUND);
    expect(missing.details).toContain('secret "db-nothing": HTTP 404');
    const badVersion = await publishWith(objects([{ objectName: 'db-user', objectVersion: 'ffffffffffffffffffffffffffffffff' }]));
    expect(badVersion.code).toBe(status.NOT_FOUND);
    expect(badVersion.details).toContain('secret "db-user" version ffffffffffffffffffffffffffffffff: HTTP 404');
  });

  it('a clear error for a disabled secret', async () => {
    const err = await publishWith(objects([{ objectName: 'disabled-one' }]));
    expect(err.code).toBe(status.FAILED_PRECONDITION);
    expect(err.details).toMatch(/secret "disabled-one": .*disabled/);
  });

  it.skipIf(!isRoot)('one failing object fails the publish and leaves nothing mounted or written', async () => {
    const err = await publishWith(objects([{ objectName: 'db-user' }, { objectName: 'db-password' }, { objectName: 'db-missing' }]));
    expect(err.code).toBe(status.NOT_FOUND);
    expect(await findMount(err.target)).toBeUndefined();
    await expect(lstat(err.target)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('keeps serving after all of the above', async () => {
    expect((await h.client.probe()).ready?.value).toBe(true);
    expect(h.logs.join('')).not.toContain(CLIENT_SECRET);
  });
});

describe.skipIf(!isRoot)('object encodings and versions', () => {
  it('decodes hex and base64, and mounts a pinned version', async () => {
    await h.writeClass(
      'enc',
      h.vaultParameters([
        { objectName: 'hexed', objectEncoding: 'hex' },
        { objectName: 'b64', objectEncoding: 'base64' },
        { objectName: 'api-token', objectVersion: versionId('api-token', 0), objectAlias: 'old-token' },
      ]),
    );
    const v = await h.volume({ className: 'enc' });
    await h.client.publish(v.request);
    expect(await readFile(join(v.targetPath, 'hexed'))).toEqual(Buffer.from([0x00, 0xff, 0x10]));
    expect(await readFile(join(v.targetPath, 'b64'))).toEqual(Buffer.from([0x00, 0x01, 0x02, 0xff]));
    expect(await readFile(join(v.targetPath, 'old-token'), 'utf8')).toBe('tok-old');
    await h.client.unpublish({ volumeId: v.volumeId, targetPath: v.targetPath });
  });
});
