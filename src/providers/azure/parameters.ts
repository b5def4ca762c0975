import { z } from 'zod';
import { invalidArgument } from '../../errors/podvault-error.js';
import { payloadPathProblem } from '../../driver/paths.js';
import type { IdentityParameters } from '../../identity/identity-parameters.js';
import { checkClassSize, checkObjectCount, DEFAULT_FETCH_LIMITS, LIMIT_FLAGS } from '../fetch-limits.js';
import type { FetchLimits } from '../fetch-limits.js';
import { AZURE_CLOUDS, findCloud } from './clouds.js';
import { parseObjectsYaml } from './objects-yaml.js';
import { AZURE_STACK_CLOUD } from './cloud-env-file.js';
import type { AzureCloud } from './clouds.js';
import { parseEnvName } from './env-file.js';
import { parseJmesPath } from './field-extraction.js';
import type { JmesPathField } from './field-extraction.js';
import { parseTemplateObject } from './template-object.js';
import type { TemplateObject } from './template-object.js';

export type ObjectType = 'secret' | 'key' | 'cert';
export type ObjectEncoding = 'utf-8' | 'hex' | 'base64';
export type ObjectFormat = 'pem' | 'pfx';

/** One entry of the `objects` array, validated and with its defaults applied. */
export interface KeyVaultObject {
  objectName: string;
  objectType: ObjectType;
  /** Empty for the current version. */
  objectVersion: string;
  objectAlias: string;
  objectEncoding: ObjectEncoding;
  objectFormat: ObjectFormat;
  objectVersionHistory: number;
  /** The file name in the volume: the alias, else the object name. */
  fileName: string;
  /** File permission bits; 0o644 unless `filePermission` says otherwise. */
  mode: number;
  // What the object becomes besides its own file (field-extraction.ts, env-file.ts).
  /** `jmesPath`: one more file per field of a JSON or YAML secret. */
  jmesPath: JmesPathField[];
  /** `envName` in the class's envFile; undefined: derived from the file name; null (`-`): left out. */
  envName: string | null | undefined;
  /** The vault and tenant this object is read from: its own `keyvaultName`/`vaultUri`/`tenantId`, else the class's. */
  vault: ObjectVault;
}

/** Where one object lives (Azure provider issue #1088: several vaults in one class). */
export interface ObjectVault {
  /** `https://<vault>.<suffix>` or a `vaultUri`, without a trailing slash. */
  url: string;
  /** True when a `vaultUri` named the vault (so the driver's allow-list applies). */
  explicit: boolean;
  tenantId: string;
  /** Which parameter named the vault, for messages: `parameter vaultUri`, `objects[2] (db): field keyvaultName`. */
  source: string;
  /** True when the object names its own vault rather than using the class's. */
  own: boolean;
}

/**
 * Class parameters on the files objects become. The two certificate options override the driver's
 * flags of the same names for this class; undefined: the flag decides.
 */
export interface FileOptions {
  /** `writeCertAndKeyInSeparateFiles`: also `<file>.crt` and `<file>.key` for certificate-backed secrets. */
  writeCertAndKeyInSeparateFiles?: boolean;
  /** `constructPEMChain`: order a PKCS#12's certificates leaf → root (false: the bundle's order). */
  constructPEMChain?: boolean;
  /** `envFile`: the path of an env file in the volume. */
  envFile?: string;
}

export interface AzureParameters {
  /**
   * The class's vault: `https://<vault>.<suffix>` or the `vaultUri` parameter, without a trailing
   * slash. Undefined when the class names none and every object names its own.
   */
  vaultUrl: string | undefined;
  /** True when `vaultUri` named the vault (so the driver's allow-list applies). */
  vaultUrlExplicit: boolean;
  /** The class's tenant; '' when the class names none and every object names its own. */
  tenantId: string;
  cloud: AzureCloud;
  identity: IdentityParameters;
  objects: KeyVaultObject[];
  /** `objectType: template` entries (template-object.ts): files rendered from the other objects. */
  templates: TemplateObject[];
  files: FileOptions;
}

export const DEFAULT_FILE_MODE = 0o644;

/** Key Vault's own naming rule for vaults. */
const VAULT_NAME = /^[-A-Za-z0-9]{3,24}$/;

/**
 * Distinct tenants one class may name through its objects' `tenantId`. Each is an identity
 * resolution (Kubernetes API reads) and a token request per publish; upstream classes name one.
 */
export const MAX_CLASS_TENANTS = 8;

/**
 * Distinct vaults one class may name through its objects' `keyvaultName`/`vaultUri`. Each is an
 * SDK client, a connection (TLS handshake) and an authentication challenge per identity, held in
 * node-wide pools of 256 clients and 64 connection pools: 256 objects in 256 vaults would evict
 * every other tenant's clients at each publish.
 */
export const MAX_CLASS_VAULTS = 16;

const trimmed = z.preprocess((v) => (typeof v === 'string' ? v.trim() : v === null ? undefined : v), z.string().optional());

/** One object as written in the class; every field a string, as in the Azure provider. */
const rawObjectSchema = z.object({
  objectName: trimmed,
  objectType: trimmed,
  objectVersion: trimmed,
  objectAlias: trimmed,
  objectEncoding: trimmed,
  objectFormat: trimmed,
  filePermission: trimmed,
  objectVersionHistory: z.preprocess((v) => (typeof v === 'string' && v.trim() !== '' ? Number(v.trim()) : v), z.number().int().min(0).optional()),
  // The object's own vault and tenant (issue #1088), overriding the class's.
  keyvaultName: trimmed,
  vaultUri: trimmed,
  tenantId: trimmed,
  tenantID: trimmed,
});

/**
 * Parse `spec.parameters` of a SecretProviderClass whose provider is `azure`, the way the Azure
 * provider does: strings are trimmed, `objects` is YAML holding `array:` of YAML strings. Every
 * problem is an INVALID_ARGUMENT that names the object and the field.
 *
 * The class's size is checked before any YAML is parsed (a 1.7 MB class blocked the event loop
 * for 1.8 s on every publish), and its object count before any entry is parsed; `where` names the
 * class in those messages.
 */
export function parseAzureParameters(
  parameters: Readonly<Record<string, string>>,
  options: { limits?: FetchLimits; where?: string; customCloud?: AzureCloud } = {},
): AzureParameters {
  const limits = options.limits ?? DEFAULT_FETCH_LIMITS;
  const where = options.where ?? 'SecretProviderClass';
  checkClassSize(where, parameters, limits);
  const param = (name: string): string => (parameters[name] ?? '').trim();

  const cloudName = param('cloudName');
  // AzureStackCloud: the endpoints of the file named by cloudEnvFileName, which the provider reads
  // (from the operator's allow-list) before parsing, see cloud-env-file.ts.
  const stack = cloudName.toLowerCase() === AZURE_STACK_CLOUD.toLowerCase();
  const cloud = stack ? options.customCloud : findCloud(cloudName);
  if (!cloud) {
    if (stack) throw invalidArgument(`parameter cloudName ${AZURE_STACK_CLOUD} needs parameter cloudEnvFileName`);
    throw invalidArgument(`parameter cloudName ${JSON.stringify(cloudName)} is not one of ${[...AZURE_CLOUDS.map((c) => c.name), AZURE_STACK_CLOUD].join(', ')}`);
  }

  // The Azure provider reads `tenantID` first and keeps `tenantId` for older classes.
  const tenantId = param('tenantID') || param('tenantId');
  if (tenantId !== '') checkTenantId('parameter tenantId', tenantId);

  const useAzureTokenProxy = parseBool('useAzureTokenProxy', param('useAzureTokenProxy'));
  if (useAzureTokenProxy && param('clientID') === '') {
    throw invalidArgument('parameter useAzureTokenProxy needs parameter clientID (the client id of the managed identity the AKS identity binding maps)');
  }

  const { objects: parsed, templates: parsedTemplates } = parseObjects(param('objects'), where, limits, cloud);
  // The class's vault and tenant are needed only by objects that name none of their own; the
  // messages name the first such object, so a class whose objects all name theirs can omit them.
  const needsVault = parsed.find((o) => o.own.url === undefined);
  const needsTenant = parsed.find((o) => o.own.tenantId === undefined);
  if (needsTenant && tenantId === '') throw invalidArgument(`parameter tenantId is required (${needsTenant.where} names no tenantId of its own)`);
  const explicit = param('vaultUri') !== '';
  const vaultUrl = needsVault || explicit || param('keyvaultName') !== '' ? vaultUrlFrom(param('vaultUri'), param('keyvaultName'), cloud, needsVault?.where) : undefined;
  const objects = parsed.map(({ object, own }): KeyVaultObject => ({
    ...object,
    vault: {
      url: own.url ?? vaultUrl ?? '',
      explicit: own.url !== undefined ? own.explicit : explicit,
      tenantId: own.tenantId ?? tenantId,
      source: own.url !== undefined ? own.source : `parameter ${explicit ? 'vaultUri' : 'keyvaultName'}`,
      own: own.url !== undefined && own.url !== vaultUrl,
    },
  }));
  // A template's tenant is the identity its sealed values are unwrapped as: its own, else the class's.
  const templates = parsedTemplates.map((t) => ({ ...t, tenantId: t.tenantId || tenantId }));
  const tenants = new Set([...objects.map((o) => o.vault.tenantId), ...templates.map((t) => t.tenantId).filter((t) => t !== '')]);
  if (tenants.size > MAX_CLASS_TENANTS) {
    throw invalidArgument(`${where}: its objects name ${tenants.size} tenants, over the limit of ${MAX_CLASS_TENANTS} tenants per class`);
  }
  const vaults = new Set(objects.map((o) => o.vault.url));
  if (vaults.size > MAX_CLASS_VAULTS) {
    throw invalidArgument(`${where}: its objects name ${vaults.size} vaults, over the limit of ${MAX_CLASS_VAULTS} vaults per class`);
  }

  return {
    vaultUrl,
    vaultUrlExplicit: explicit,
    tenantId,
    cloud,
    identity: {
      usePodIdentity: parseBool('usePodIdentity', param('usePodIdentity')),
      useVMManagedIdentity: parseBool('useVMManagedIdentity', param('useVMManagedIdentity')),
      userAssignedIdentityID: param('userAssignedIdentityID'),
      clientID: param('clientID'),
      useAzureTokenProxy,
    },
    objects,
    templates,
    files: parseFileOptions(param),
  };
}

function parseFileOptions(param: (name: string) => string): FileOptions {
  const optionalBool = (name: string): boolean | undefined => (param(name) === '' ? undefined : parseBool(name, param(name)));
  const files: FileOptions = {};
  const separate = optionalBool('writeCertAndKeyInSeparateFiles');
  if (separate !== undefined) files.writeCertAndKeyInSeparateFiles = separate;
  const chain = optionalBool('constructPEMChain');
  if (chain !== undefined) files.constructPEMChain = chain;
  const envFile = param('envFile');
  if (envFile !== '') {
    const problem = payloadPathProblem(envFile);
    if (problem) throw invalidArgument(`parameter envFile ${problem}`);
    files.envFile = envFile;
  }
  return files;
}

/**
 * The vault URL from a `vaultUri` or `keyvaultName`; `field` names them in messages (`parameter`
 * for the class's, `objects[i] (name): field` for an object's own), `neededBy` the object that
 * needs the class's vault when neither is set.
 */
function vaultUrlFrom(vaultUri: string, keyvaultName: string, cloud: AzureCloud, neededBy?: string, field = 'parameter'): string {
  if (vaultUri !== '') {
    let url: URL;
    try {
      url = new URL(vaultUri);
    } catch {
      throw invalidArgument(`${field} vaultUri ${JSON.stringify(vaultUri)} is not a URL`);
    }
    if (url.protocol !== 'https:') throw invalidArgument(`${field} vaultUri must be an https:// URL`);
    if (url.username || url.password || url.search || url.hash || (url.pathname !== '/' && url.pathname !== '')) {
      throw invalidArgument(`${field} vaultUri must be the vault origin only (https://host[:port]), without path, query or credentials`);
    }
    return url.origin;
  }
  if (keyvaultName === '') throw invalidArgument(`parameter keyvaultName is required (or vaultUri)${neededBy ? `: ${neededBy} names no vault of its own` : ''}`);
  if (!VAULT_NAME.test(keyvaultName)) {
    throw invalidArgument(`${field} keyvaultName ${JSON.stringify(keyvaultName)} must be 3-24 letters, digits or dashes`);
  }
  return `https://${keyvaultName.toLowerCase()}.${cloud.vaultSuffix}`;
}

function checkTenantId(field: string, tenantId: string): void {
  // Labels of letters, digits and `-`: `.` or `..` would be a path segment of the authority URL.
  if (tenantId.length > 256 || !/^[-A-Za-z0-9]+(\.[-A-Za-z0-9]+)*$/.test(tenantId)) throw invalidArgument(`${field} must be a tenant id (GUID) or domain name`);
}

/** An object's own vault and tenant, as far as it names them (undefined: the class's). */
interface OwnVault {
  url?: string;
  explicit: boolean;
  source: string;
  tenantId?: string;
}

interface ParsedObject {
  object: Omit<KeyVaultObject, 'vault'>;
  own: OwnVault;
  /** `objects[i] (name)`, for messages. */
  where: string;
}

function parseBool(name: string, value: string): boolean {
  // strconv.ParseBool's spellings, as the Azure provider accepts them.
  if (value === '') return false;
  if (['1', 't', 'T', 'true', 'TRUE', 'True'].includes(value)) return true;
  if (['0', 'f', 'F', 'false', 'FALSE', 'False'].includes(value)) return false;
  throw invalidArgument(`parameter ${name} must be "true" or "false", not ${JSON.stringify(value)}`);
}

function parseObjects(objectsYaml: string, where: string, limits: FetchLimits, cloud: AzureCloud): { objects: ParsedObject[]; templates: TemplateObject[] } {
  if (objectsYaml === '') throw invalidArgument('parameter objects is required');
  let outer: unknown;
  try {
    outer = parseObjectsYaml(objectsYaml);
  } catch (err) {
    throw invalidArgument(`parameter objects is not valid YAML: ${firstLine(err)}`);
  }
  const array = (outer as { array?: unknown } | null)?.array;
  if (!Array.isArray(array) || array.length === 0) {
    throw invalidArgument('parameter objects must be YAML with a non-empty "array:" list');
  }
  checkObjectCount(where, array.length, limits);

  const entries = array.map((entry, index) => parseEntry(entry, index, limits, where, cloud));
  const byFile = new Map<string, number>();
  entries.forEach((entry, index) => {
    const o = 'object' in entry ? entry.object : entry;
    const other = byFile.get(o.fileName);
    if (other !== undefined) {
      throw invalidArgument(`objects[${index}] (${o.objectName}): file name ${JSON.stringify(o.fileName)} is already used by objects[${other}]; set objectAlias`);
    }
    byFile.set(o.fileName, index);
  });
  const objects = entries.filter((e): e is ParsedObject => 'object' in e);
  const templates = entries.filter((e): e is TemplateObject => !('object' in e));
  return { objects, templates };
}

/** One entry of `objects`: a vault object, or a template (whose fields are its own, see template-object.ts). */
function parseEntry(entry: unknown, index: number, limits: FetchLimits, className: string, cloud: AzureCloud): ParsedObject | TemplateObject {
  const value = entryValue(entry, `objects[${index}]`);
  const type = (value as { objectType?: unknown }).objectType;
  if (typeof type === 'string' && type.trim() === 'template') return parseTemplateObject(value, index);
  return parseObject(value, index, limits, className, cloud);
}

function entryValue(entry: unknown, where: string): object {
  let value: unknown = entry;
  if (typeof entry === 'string') {
    try {
      value = parseObjectsYaml(entry);
    } catch (err) {
      throw invalidArgument(`${where} is not valid YAML: ${firstLine(err)}`);
    }
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw invalidArgument(`${where} must be a YAML mapping`);
  return value;
}

function parseObject(value: object, index: number, limits: FetchLimits, className: string, cloud: AzureCloud): ParsedObject {
  const where = `objects[${index}]`;
  const parsed = rawObjectSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw invalidArgument(`${where}: field ${issue?.path.join('.') ?? '?'} ${issue?.message ?? 'is invalid'}`);
  }
  const raw = parsed.data;
  const objectName = raw.objectName ?? '';
  const at = objectName ? `${where} (${objectName})` : where;
  if (objectName === '') throw invalidArgument(`${where}: field objectName is required`);
  if (!/^[-A-Za-z0-9]{1,127}$/.test(objectName)) throw invalidArgument(`${at}: field objectName must be 1-127 letters, digits or dashes`);

  const objectType = raw.objectType ?? '';
  if (objectType !== 'secret' && objectType !== 'key' && objectType !== 'cert') {
    throw invalidArgument(`${at}: field objectType ${JSON.stringify(objectType)} must be one of secret, key, cert, template`);
  }

  const encodingRaw = (raw.objectEncoding ?? '').toLowerCase();
  if (encodingRaw !== '' && objectType !== 'secret') throw invalidArgument(`${at}: field objectEncoding is only supported for objectType secret`);
  if (encodingRaw !== '' && encodingRaw !== 'utf-8' && encodingRaw !== 'hex' && encodingRaw !== 'base64') {
    throw invalidArgument(`${at}: field objectEncoding ${JSON.stringify(raw.objectEncoding)} must be one of utf-8, hex, base64`);
  }

  const formatRaw = (raw.objectFormat ?? '').toLowerCase();
  if (formatRaw !== '' && formatRaw !== 'pem' && formatRaw !== 'pfx') {
    throw invalidArgument(`${at}: field objectFormat ${JSON.stringify(raw.objectFormat)} must be pem or pfx`);
  }
  if (formatRaw === 'pfx' && objectType !== 'secret') throw invalidArgument(`${at}: field objectFormat pfx is only supported for objectType secret`);

  const objectVersion = raw.objectVersion ?? '';
  if (objectVersion !== '' && !/^[A-Za-z0-9]{1,64}$/.test(objectVersion)) {
    throw invalidArgument(`${at}: field objectVersion must be a version id (letters and digits)`);
  }

  const objectAlias = raw.objectAlias ?? '';
  // An empty alias means "no alias", as in the Azure provider: classes that spell out
  // `objectAlias: ""` must keep working. Absolute paths and `..` segments are refused below.
  const fileName = objectAlias || objectName;
  const pathProblem = payloadPathProblem(fileName);
  if (pathProblem) throw invalidArgument(`${at}: field ${objectAlias ? 'objectAlias' : 'objectName'} ${pathProblem}`);

  let mode = DEFAULT_FILE_MODE;
  if (raw.filePermission !== undefined && raw.filePermission !== '') {
    if (!/^0?[0-7]{3,4}$/.test(raw.filePermission)) throw invalidArgument(`${at}: field filePermission must be an octal mode such as "0644"`);
    mode = parseInt(raw.filePermission, 8);
    if (mode > 0o777) throw invalidArgument(`${at}: field filePermission must not set setuid, setgid or sticky bits`);
  }

  // Each history entry is a file: more than a class may hold is refused before any version is listed.
  const objectVersionHistory = raw.objectVersionHistory ?? 0;
  if (objectVersionHistory > limits.maxObjects) {
    throw invalidArgument(`${className}: ${at}: field objectVersionHistory ${objectVersionHistory} is over the limit of ${limits.maxObjects} objects per class (${LIMIT_FLAGS.maxObjects})`);
  }

  // --- The object's own vault and tenant (Azure provider issue #1088) ---------------------------
  // `vaultUri` wins over `keyvaultName` and `tenantID` over `tenantId`, as at the class level; the
  // origin rules (--allow-vault-uri, the Key Vault resource) are applied per object by the provider.
  const own: OwnVault = { explicit: false, source: '' };
  if ((raw.vaultUri ?? '') !== '' || (raw.keyvaultName ?? '') !== '') {
    own.explicit = (raw.vaultUri ?? '') !== '';
    own.url = vaultUrlFrom(raw.vaultUri ?? '', raw.keyvaultName ?? '', cloud, undefined, `${at}: field`);
    own.source = `${at}: field ${own.explicit ? 'vaultUri' : 'keyvaultName'}`;
  }
  const ownTenant = raw.tenantID || raw.tenantId || '';
  if (ownTenant !== '') {
    checkTenantId(`${at}: field ${raw.tenantID ? 'tenantID' : 'tenantId'}`, ownTenant);
    own.tenantId = ownTenant;
  }
  // --- end of the object's own vault ------------------------------------------------------------

  // What the object becomes besides its own file: jmesPath fields and its env file variable.
  const fields = value as { jmesPath?: unknown; envName?: unknown };
  const jmesPath = parseJmesPath(fields.jmesPath, at, objectType, objectVersionHistory, limits.maxObjects);
  const envName = parseEnvName(fields.envName, at);
  if (typeof envName === 'string' && objectVersionHistory > 1) {
    throw invalidArgument(`${at}: field envName names one variable, but objectVersionHistory makes ${objectVersionHistory} files; leave it out to get one variable per file`);
  }


  return {
    object: {
      objectName,
      objectType,
      objectVersion,
      objectAlias,
      objectEncoding: (encodingRaw || 'utf-8') as ObjectEncoding,
      objectFormat: (formatRaw || 'pem') as ObjectFormat,
      objectVersionHistory,
      fileName,
      mode,
      jmesPath,
      envName,
    },
    own,
    where: at,
  };
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? '';
}
