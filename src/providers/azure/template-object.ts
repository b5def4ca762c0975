import { z } from 'zod';
import { invalidArgument } from '../../errors/podvault-error.js';
import { payloadPathProblem } from '../../driver/paths.js';
import { parseTemplate } from '../../templates/template-syntax.js';
import type { ParsedTemplate } from '../../templates/template-syntax.js';

/** Where a template's text is: a key of a ConfigMap of the pod's namespace, or the class itself. */
export type TemplateSource = { kind: 'configMap'; name: string; key: string } | { kind: 'inline'; parsed: ParsedTemplate; text: string };

/**
 * An `objectType: template` entry of `objects` (docs/templates.md): a file rendered from a
 * template that refers to the class's other objects and holds sealed values. It names no vault:
 * its references are the class's objects, and each sealed value names its key.
 */
export interface TemplateObject {
  objectName: string;
  objectAlias: string;
  /** The file name in the volume: the alias, else the object name. */
  fileName: string;
  mode: number;
  source: TemplateSource;
  /** Whose identity unwraps its sealed values: its own `tenantId`, else the class's ('' if none). */
  tenantId: string;
  /** `objects[i] (name)`, for messages. */
  where: string;
}

/** ConfigMap names are DNS subdomains; keys are what the API server accepts for `data`. */
const CONFIG_MAP_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
const CONFIG_MAP_KEY = /^[-._a-zA-Z0-9]{1,253}$/;

const trimmed = z.preprocess((v) => (typeof v === 'string' ? v.trim() : v === null ? undefined : v), z.string().optional());

const rawTemplateSchema = z
  .object({
    objectName: trimmed,
    objectType: trimmed,
    objectAlias: trimmed,
    filePermission: trimmed,
    tenantId: trimmed,
    tenantID: trimmed,
    configMap: z.object({ name: z.string(), key: z.string() }).strict().optional(),
    template: z.string().optional(),
  })
  .strict();

/**
 * Parse one template entry. Fields of vault objects (objectVersion, objectEncoding, keyvaultName,
 * jmesPath…) are refused, not ignored: a template has no vault object of its own. An inline
 * template is parsed here, so its mistakes fail every publish of the class before any vault call.
 */
export function parseTemplateObject(value: object, index: number): TemplateObject {
  const where = `objects[${index}]`;
  const parsed = rawTemplateSchema.safeParse(value);
  const name = typeof (value as { objectName?: unknown }).objectName === 'string' ? ((value as { objectName: string }).objectName).trim() : '';
  const at = name ? `${where} (${name})` : where;
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    if (issue?.code === 'unrecognized_keys') throw invalidArgument(`${at}: field ${issue.keys.join(', ')} is not supported for objectType template (its fields: objectName, objectAlias, filePermission, tenantId, and one of configMap, template)`);
    throw invalidArgument(`${at}: field ${issue?.path.join('.') ?? '?'} ${issue?.message ?? 'is invalid'}`);
  }
  const raw = parsed.data;
  if (name === '') throw invalidArgument(`${where}: field objectName is required`);
  // The vault objects' rule, so that references and file names read alike; objectAlias names a file such as `app.yaml`.
  if (!/^[-A-Za-z0-9]{1,127}$/.test(name)) throw invalidArgument(`${at}: field objectName must be 1-127 letters, digits or dashes (set objectAlias for a file name such as app.yaml)`);
  const objectAlias = raw.objectAlias ?? '';
  const fileName = objectAlias || name;
  const pathProblem = payloadPathProblem(fileName);
  if (pathProblem) throw invalidArgument(`${at}: field ${objectAlias ? 'objectAlias' : 'objectName'} ${pathProblem}`);

  let mode = 0o644;
  if (raw.filePermission !== undefined && raw.filePermission !== '') {
    if (!/^0?[0-7]{3,4}$/.test(raw.filePermission)) throw invalidArgument(`${at}: field filePermission must be an octal mode such as "0644"`);
    mode = parseInt(raw.filePermission, 8);
    if (mode > 0o777) throw invalidArgument(`${at}: field filePermission must not set setuid, setgid or sticky bits`);
  }
  const tenantId = raw.tenantID || raw.tenantId || '';
  if (tenantId !== '' && (tenantId.length > 256 || !/^[-A-Za-z0-9]+(\.[-A-Za-z0-9]+)*$/.test(tenantId))) throw invalidArgument(`${at}: field tenantId must be a tenant id (GUID) or domain name`);

  if ((raw.configMap === undefined) === (raw.template === undefined)) throw invalidArgument(`${at}: objectType template needs exactly one of configMap ({name, key}) or template (inline text)`);
  let source: TemplateSource;
  if (raw.configMap) {
    const { name: cm, key } = raw.configMap;
    if (!CONFIG_MAP_NAME.test(cm)) throw invalidArgument(`${at}: field configMap.name must be a ConfigMap name (lowercase DNS subdomain)`);
    if (!CONFIG_MAP_KEY.test(key)) throw invalidArgument(`${at}: field configMap.key must be a ConfigMap key (letters, digits, '-', '_', '.')`);
    source = { kind: 'configMap', name: cm, key };
  } else {
    const text = raw.template ?? '';
    source = { kind: 'inline', text, parsed: parseTemplate(text, `${at}: template ${JSON.stringify(fileName)} (inline)`) };
  }
  return { objectName: name, objectAlias, fileName, mode, source, tenantId, where: at };
}
