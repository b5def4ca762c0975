/**
 * `cloudName: AzureStackCloud` with `cloudEnvFileName`: a custom cloud's endpoints from a
 * go-autorest environment file on the node, read only from files the operator allowed.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PodvaultError } from '../src/errors/podvault-error.js';
import { loadCloudEnvFile, MAX_CLOUD_ENV_FILE_BYTES } from '../src/providers/azure/cloud-env-file.js';
import { parseAzureParameters } from '../src/providers/azure/parameters.js';
import { isRoot, objectsParameter, rpcError, startHarness } from './support/harness.js';
import type { Harness } from './support/harness.js';

const STACK_RESOURCE = 'https://vault.local.azurestack.external';

/** An environment file as Azure Stack Hub operators write it (go-autorest azure.Environment). */
function environment(authority: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    name: 'AzureStackCloud',
    managementPortalURL: 'https://portal.local.azurestack.external/',
    resourceManagerEndpoint: 'https://management.local.azurestack.external/',
    activeDirectoryEndpoint: `${authority}/`,
    keyVaultEndpoint: `${STACK_RESOURCE}/`,
    keyVaultDNSSuffix: 'vault.local.azurestack.external',
    storageEndpointSuffix: 'local.azurestack.external',
    resourceIdentifiers: {},
    ...extra,
  }, null, 2);
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp('/dev/shm/podvault-cloud-');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function refusal(promise: Promise<unknown>): Promise<string> {
  const err: unknown = await promise.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(PodvaultError);
  expect((err as PodvaultError).kind).toBe('invalid-argument');
  return (err as Error).message;
}

describe('loadCloudEnvFile', () => {
  it('maps the file to the vault suffix, authority and Key Vault resource', async () => {
    const file = join(dir, 'stack.json');
    await writeFile(file, environment('https://adfs.local.azurestack.external/adfs'));
    const cloud = await loadCloudEnvFile(file, [file]);
    expect(cloud).toEqual({ name: 'AzureStackCloud', vaultSuffix: 'vault.local.azurestack.external', authorityHost: 'https://adfs.local.azurestack.external/adfs', keyVaultResource: STACK_RESOURCE });
    const params = parseAzureParameters({ cloudName: 'azurestackcloud', cloudEnvFileName: file, keyvaultName: 'kv1', tenantId: 'adfs', objects: objectsParameter([{ objectName: 'x' }]) }, { customCloud: cloud });
    expect(params.vaultUrl).toBe('https://kv1.vault.local.azurestack.external');
  });

  it('opens only a file the operator allowed, and names no more than the path', async () => {
    expect(await refusal(loadCloudEnvFile('/etc/shadow', [join(dir, 'stack.json')]))).toBe('parameter cloudEnvFileName "/etc/shadow" is not a cloud environment file the node\'s operator allows (--allow-cloud-env-file)');
    expect(await refusal(loadCloudEnvFile(`${dir}/../${dir.split('/').at(-1)}/stack.json`, [join(dir, 'stack.json')]))).toMatch(/is not a cloud environment file the node's operator allows/);
    expect(await refusal(loadCloudEnvFile('', [join(dir, 'stack.json')]))).toMatch(/needs parameter cloudEnvFileName/);
  });

  it('never quotes the file: not JSON, a missing key, a bad value', async () => {
    const file = join(dir, 'bad.json');
    const secretish = 'root:$6$Never-Quote-Me$hash:19000';
    await writeFile(file, secretish);
    const notJson = await refusal(loadCloudEnvFile(file, [file]));
    expect(notJson).toBe(`cloud environment file ${JSON.stringify(file)} (parameter cloudEnvFileName) is not valid JSON`);
    await writeFile(file, environment('https://login.example', { keyVaultDNSSuffix: undefined }));
    expect(await refusal(loadCloudEnvFile(file, [file]))).toMatch(/: key keyVaultDNSSuffix is required \(a string\)$/);
    await writeFile(file, environment('https://login.example', { keyVaultEndpoint: `http://${secretish}` }));
    const bad = await refusal(loadCloudEnvFile(file, [file]));
    expect(bad).toMatch(/: key keyVaultEndpoint must be an https:\/\/ URL/);
    expect(bad).not.toContain('Never-Quote-Me');
    await writeFile(file, environment('https://login.example', { activeDirectoryEndpoint: 'https://user:pw@login.example/' }));
    expect(await refusal(loadCloudEnvFile(file, [file]))).not.toContain('pw');
  });

  it('bounds the file before reading it', async () => {
    const file = join(dir, 'big.json');
    await writeFile(file, ' '.repeat(MAX_CLOUD_ENV_FILE_BYTES + 1));
    expect(await refusal(loadCloudEnvFile(file, [file]))).toBe(`cloud environment file ${JSON.stringify(file)} (parameter cloudEnvFileName) is ${MAX_CLOUD_ENV_FILE_BYTES + 1} bytes, over the limit of ${MAX_CLOUD_ENV_FILE_BYTES} bytes`);
    expect(await refusal(loadCloudEnvFile(dir, [dir]))).toMatch(/is not a regular file$/);
  });
});

describe.skipIf(!isRoot)('a class on a custom cloud (AzureStackCloud) against dev-vault', () => {
  let h: Harness;
  let file: string;
  beforeAll(async () => {
    file = join(dir, 'devvault-cloud.json');
    // No --authority-host: the authority is the file's activeDirectoryEndpoint.
    h = await startHarness({ authorityHost: undefined, allowCloudEnvFile: [file] }, { vaultResource: STACK_RESOURCE });
    await writeFile(file, environment(h.vault.url));
  });
  afterAll(async () => {
    await h?.close();
  });

  it('reads the vault with tokens for the file\'s Key Vault resource from the file\'s authority', async () => {
    await h.writeClass('stack', { ...h.vaultParameters([{ objectName: 'db-password' }]), cloudName: 'AzureStackCloud', cloudEnvFileName: file });
    const v = await h.volume({ className: 'stack' });
    await h.client.publish(v.request);
    expect(await readFile(join(v.targetPath, 'db-password'), 'utf8')).toBe('pw-Zq81-never-log-me');
    expect(h.vault.tokenScopes).toEqual([`${STACK_RESOURCE}/.default`]);
    await h.client.unpublish({ volumeId: v.volumeId, targetPath: v.targetPath });
  });

  it('refuses a class naming a node file the operator did not allow, without opening it', async () => {
    await h.writeClass('stack-shadow', { ...h.vaultParameters([{ objectName: 'db-password' }]), cloudName: 'AzureStackCloud', cloudEnvFileName: '/etc/shadow' });
    const v = await h.volume({ className: 'stack-shadow' });
    const err = await rpcError(h.client.publish(v.request));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toBe('parameter cloudEnvFileName "/etc/shadow" is not a cloud environment file the node\'s operator allows (--allow-cloud-env-file)');
  });
});
