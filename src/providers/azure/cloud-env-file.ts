import { open } from 'node:fs/promises';
import { invalidArgument, PodvaultError } from '../../errors/podvault-error.js';
import type { AzureCloud } from './clouds.js';

/** The `cloudName` whose endpoints come from a file on the node, as in the Azure provider. */
export const AZURE_STACK_CLOUD = 'AzureStackCloud';
/** The flag that lists the files classes may name. */
export const CLOUD_ENV_FILE_FLAG = '--allow-cloud-env-file';
/** A go-autorest environment file is ~2 KB; anything far larger is not one. */
export const MAX_CLOUD_ENV_FILE_BYTES = 64 * 1024;

const DNS_SUFFIX = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)+$/i;

/**
 * The cloud a class with `cloudName: AzureStackCloud` describes through `cloudEnvFileName`: a
 * go-autorest `azure.Environment` JSON file on the node (the Azure provider hands its path to
 * go-autorest through AZURE_ENVIRONMENT_FILEPATH). podvault reads three of its keys:
 * `keyVaultDNSSuffix` (vaults are `<keyvaultName>.<suffix>`), `activeDirectoryEndpoint` (the
 * Entra ID / AD FS authority) and `keyVaultEndpoint` (the Key Vault resource, the only audience
 * tokens are asked for); `name` names it in logs.
 *
 * The path is the class author's text and the driver runs as root, so only files the node's
 * operator listed with --allow-cloud-env-file are opened (an exact match, before anything touches
 * the file system); the file is bounded before it is read, and messages name the file and the key
 * at fault, never the file's contents.
 */
export async function loadCloudEnvFile(fileName: string, allowed: readonly string[]): Promise<AzureCloud> {
  const shown = JSON.stringify(fileName.slice(0, 256));
  if (fileName === '') throw invalidArgument(`parameter cloudName ${AZURE_STACK_CLOUD} needs parameter cloudEnvFileName (a cloud environment file the node's operator allows with ${CLOUD_ENV_FILE_FLAG})`);
  if (!allowed.includes(fileName)) {
    throw invalidArgument(`parameter cloudEnvFileName ${shown} is not a cloud environment file the node's operator allows (${CLOUD_ENV_FILE_FLAG})`);
  }
  const where = `cloud environment file ${shown} (parameter cloudEnvFileName)`;
  let text: string;
  try {
    text = await readBounded(fileName, where);
  } catch (err) {
    if (err instanceof PodvaultError) throw err;
    const code = (err as { code?: unknown }).code;
    throw invalidArgument(`${where} cannot be read${typeof code === 'string' ? ` (${code})` : ''}`);
  }
  let env: unknown;
  try {
    env = JSON.parse(text);
  } catch {
    // JSON.parse's message quotes the text: it is not passed on.
    throw invalidArgument(`${where} is not valid JSON`);
  }
  if (!env || typeof env !== 'object' || Array.isArray(env)) throw invalidArgument(`${where} must hold a JSON object`);
  const field = (key: string): string => {
    const value = (env as Record<string, unknown>)[key];
    if (typeof value !== 'string' || value.trim() === '') throw invalidArgument(`${where}: key ${key} is required (a string)`);
    return value.trim();
  };
  const suffix = field('keyVaultDNSSuffix').replace(/^\./, '');
  if (!DNS_SUFFIX.test(suffix)) throw invalidArgument(`${where}: key keyVaultDNSSuffix must be a DNS suffix such as vault.local.azurestack.external`);
  const authorityHost = httpsUrl(where, 'activeDirectoryEndpoint', field('activeDirectoryEndpoint'), true);
  const keyVaultResource = httpsUrl(where, 'keyVaultEndpoint', field('keyVaultEndpoint'), false);
  const rawName = (env as Record<string, unknown>).name;
  const name = typeof rawName === 'string' && /^[-\w. ]{1,64}$/.test(rawName) ? rawName : AZURE_STACK_CLOUD;
  return { name, vaultSuffix: suffix.toLowerCase(), authorityHost, keyVaultResource };
}

/** Reads at most the limit (plus one byte, to tell a larger file), from a regular file. */
async function readBounded(fileName: string, where: string): Promise<string> {
  const handle = await open(fileName, 'r');
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw invalidArgument(`${where} is not a regular file`);
    if (stat.size > MAX_CLOUD_ENV_FILE_BYTES) throw invalidArgument(`${where} is ${stat.size} bytes, over the limit of ${MAX_CLOUD_ENV_FILE_BYTES} bytes`);
    const buffer = Buffer.alloc(MAX_CLOUD_ENV_FILE_BYTES + 1);
    let length = 0;
    while (length < buffer.length) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    if (length > MAX_CLOUD_ENV_FILE_BYTES) throw invalidArgument(`${where} is over the limit of ${MAX_CLOUD_ENV_FILE_BYTES} bytes`);
    return buffer.subarray(0, length).toString('utf8');
  } finally {
    await handle.close();
  }
}

/**
 * An https endpoint of the file, without a trailing slash. `withPath`: the authority may carry a
 * path (AD FS: `https://adfs.<region>.<fqdn>/adfs`); the Key Vault resource is an origin.
 */
function httpsUrl(where: string, key: string, value: string, withPath: boolean): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw invalidArgument(`${where}: key ${key} must be an https:// URL`);
  }
  const path = url.pathname.replace(/\/+$/, '');
  if (url.protocol !== 'https:' || url.username || url.password || url.search || url.hash || (!withPath && path !== '')) {
    throw invalidArgument(`${where}: key ${key} must be an https:// URL${withPath ? '' : ' of an origin only (https://host[:port])'}, without query or credentials`);
  }
  return `${url.origin}${withPath ? path : ''}`;
}
