import { createHash } from 'node:crypto';
import { failedPrecondition, invalidArgument, notFound, resourceExhausted } from '../../errors/podvault-error.js';
import type { ConfigMapData, ConfigMapSource } from '../../kube/config-maps.js';
import { configMapDataBytes, MAX_CONFIG_MAP_BYTES } from '../../kube/config-maps.js';
import { renderTemplate } from '../../templates/render-template.js';
import { parseTemplate } from '../../templates/template-syntax.js';
import type { Expression, ObjectExpression, ParsedTemplate } from '../../templates/template-syntax.js';
import type { ProviderFile } from '../provider.js';
import { LIMIT_FLAGS } from '../fetch-limits.js';
import type { FetchLimits, VolumeBudget } from '../fetch-limits.js';
import type { KeyVaultObject } from './parameters.js';
import { decodeSealedValues } from './sealed-values.js';
import type { SealedUse } from './sealed-values.js';
import type { SealedMarker } from '../../sealed/markers.js';
import type { TemplateObject } from './template-object.js';
import { MAX_DATA_KEYS_PER_TEXT } from '../../sealed/open-markers.js';
import { MAX_TEMPLATE_BYTES } from '../../templates/template-syntax.js';

/**
 * Bytes of template text one publish reads and parses, its templates together: four templates at
 * their own limit. Without it a class of 255 templates naming one 256 KiB ConfigMap key had the
 * serving thread parse 64 MiB at every publish and rotation (0.85-1.4 s of the scanner's worst text).
 */
export const MAX_CLASS_TEMPLATE_BYTES = 4 * MAX_TEMPLATE_BYTES;
/**
 * Unwraps one publish makes for its templates: each template's distinct data keys, added up over
 * the templates (each template unwraps its own). The per-text bound of src/sealed/, for the class:
 * without it 255 templates of 64 data keys each were 16,320 vault calls per publish.
 */
export const MAX_CLASS_UNWRAPS = MAX_DATA_KEYS_PER_TEXT;

/** What one publish's templates may cost together (text parsed, unwraps), counted as they are read. */
export class TemplateBudget {
  private textBytes = 0;
  private unwraps = 0;

  constructor(private readonly where: string) {}

  /** Before a template's text is parsed. */
  addText(label: string, bytes: number): void {
    this.textBytes += bytes;
    if (this.textBytes > MAX_CLASS_TEMPLATE_BYTES) throw resourceExhausted(`${this.where}: at ${label}: its templates hold ${this.textBytes} bytes of text so far, over the limit of ${MAX_CLASS_TEMPLATE_BYTES} bytes of template text per class`);
  }

  /** Before any unwrap: a template's distinct data keys. */
  addUnwraps(label: string, count: number): void {
    this.unwraps += count;
    if (this.unwraps > MAX_CLASS_UNWRAPS) throw resourceExhausted(`${this.where}: at ${label}: its templates' sealed values need ${this.unwraps} unwraps so far (one per distinct data key of each template), over the limit of ${MAX_CLASS_UNWRAPS} unwraps per publish; seal a file's values in one run (podvault seal --file) so they share one data key`);
  }
}

/** A template whose text is read and parsed, and whose references are the class's objects. */
export interface LoadedTemplate {
  template: TemplateObject;
  parsed: ParsedTemplate;
  /** `objects[2] (app): template "app.yaml" (ConfigMap team-a/app key app.yaml)`, for messages. */
  label: string;
  /** The file each reference names (an object's own file or one of its jmesPath fields), by expression. */
  references: Map<Expression, string>;
  /** Its sealed values, one per distinct marker, decoded (not yet opened). */
  sealed: SealedMarker[];
  /** sha256 of the template's text: part of the file's version, so a changed ConfigMap is a new version. */
  textDigest: string;
}

/** Each ConfigMap's size, measured once however many templates name it (readOnce gives them one object). */
const dataBytes = new WeakMap<ConfigMapData, number>();

/** A template's label as messages name it. */
export function templateLabel(t: TemplateObject, namespace: string): string {
  const from = t.source.kind === 'configMap' ? `ConfigMap ${namespace}/${t.source.name} key ${t.source.key}` : 'inline';
  return `${t.where}: template ${JSON.stringify(t.fileName)} (${from})`;
}

/**
 * Step 1 of a template: its text (the class's, or the ConfigMap's key read in `namespace`, the
 * pod's own, never a namespace the class names), parsed, and each reference matched to one of
 * the class's objects; all before any vault call, so a mistake costs no vault traffic.
 */
export async function loadTemplate(t: TemplateObject, objects: readonly KeyVaultObject[], namespace: string, configMaps: ConfigMapSource | undefined, budget: TemplateBudget): Promise<LoadedTemplate> {
  const label = templateLabel(t, namespace);
  let parsed: ParsedTemplate;
  let text: string;
  if (t.source.kind === 'inline') {
    ({ parsed, text } = t.source);
    budget.addText(label, Buffer.byteLength(text, 'utf8'));
  } else {
    const { name, key } = t.source;
    if (!configMaps) throw failedPrecondition(`${label}: this driver reads no ConfigMaps`);
    const configMap = await configMaps.get(namespace, name);
    if (!configMap) throw notFound(`${label}: ConfigMap ${JSON.stringify(name)} not found in namespace ${JSON.stringify(namespace)} (the pod's namespace: templates read ConfigMaps of their pod's namespace only)`);
    // Own keys only: `constructor` or `toString` must not find Object.prototype's.
    const value = Object.hasOwn(configMap.data, key) ? configMap.data[key] : undefined;
    if (typeof value !== 'string') throw notFound(`${label}: ConfigMap ${namespace}/${name} has no key ${JSON.stringify(key)} in its data`);
    // Counted before the whole ConfigMap is measured or the text parsed: past the class's bound, no more work.
    budget.addText(label, Buffer.byteLength(value, 'utf8'));
    let bytes = dataBytes.get(configMap);
    if (bytes === undefined) dataBytes.set(configMap, (bytes = configMapDataBytes(configMap.data)));
    if (bytes > MAX_CONFIG_MAP_BYTES) throw resourceExhausted(`${label}: the ConfigMap's data is ${bytes} bytes, over the limit of ${MAX_CONFIG_MAP_BYTES} bytes`);
    text = value;
    parsed = parseTemplate(text, label);
  }
  const references = new Map<Expression, string>();
  const markers = new Map<string, SealedUse>();
  for (const e of parsed.expressions) {
    if (e.kind === 'object') references.set(e, referencedFile(e, objects, label));
    else if (!markers.has(e.marker)) markers.set(e.marker, { marker: e.marker, line: e.line, column: e.column });
  }
  const sealed = decodeSealedValues([...markers.values()], label);
  budget.addUnwraps(label, new Set(sealed.map((m) => `${m.keyId} ${Buffer.from(m.wrappedKey).toString('base64')}`)).size);
  return { template: t, parsed, label, references, sealed, textDigest: createHash('sha256').update(text).digest('hex') };
}

/**
 * The file a reference names: the own file of the class's object of the function's type whose
 * objectAlias (its file name) or else objectName is the name, or a jmesPath field file of such an
 * object named by its objectAlias. A name that matches nothing, objects of another type only, or
 * several objects, fails naming the template, the line and the reference.
 */
export function referencedFile(e: ObjectExpression, objects: readonly KeyVaultObject[], label: string): string {
  const at = `${label}: line ${e.line}, column ${e.column}: ${e.fn} ${JSON.stringify(e.name)}`;
  const field = objects.find((o) => o.jmesPath.some((f) => f.fileName === e.name));
  const byFile = objects.filter((o) => o.fileName === e.name);
  const candidates = byFile.length > 0 ? byFile : field ? [field] : objects.filter((o) => o.objectName === e.name);
  const typed = candidates.filter((o) => o.objectType === e.fn);
  if (typed.length === 0) {
    const other = candidates[0];
    if (other) throw invalidArgument(`${at}: the class's object of that name is a ${other.objectType}; write {{ ${other.objectType} "${e.name}" }}`);
    throw invalidArgument(`${at}: no object of the class has that objectName or objectAlias (a template refers to the class's own objects only)`);
  }
  if (typed.length > 1) throw invalidArgument(`${at}: ${typed.length} objects of the class have that objectName; refer to one by its objectAlias`);
  const object = typed[0] as KeyVaultObject;
  if (object.objectVersionHistory > 1) throw invalidArgument(`${at}: the object has objectVersionHistory ${object.objectVersionHistory} (several files); a template refers to an object of one file`);
  return byFile.length === 0 && field === object ? e.name : object.fileName;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Step 3: the template's file, from the referenced objects' files (as fetched for this publish:
 * nothing is fetched twice) and its opened sealed values; counted against the volume's budget.
 * Its version is a digest of the text, the referenced versions and the markers (no value), so
 * the pod status and the rotation log show when it changed.
 */
export function renderTemplateFile(loaded: LoadedTemplate, fileAt: ReadonlyMap<string, ProviderFile>, sealed: ReadonlyMap<string, string>, limits: FetchLimits, budget: VolumeBudget): ProviderFile {
  const { template, label } = loaded;
  const version = createHash('sha256').update(loaded.textDigest);
  const contents = renderTemplate(
    loaded.parsed,
    (e) => {
      if (e.kind === 'sealed') {
        const value = sealed.get(e.marker);
        if (value === undefined) throw invalidArgument(`${label}: line ${e.line}, column ${e.column}: the sealed value was not opened`);
        version.update(`\0${e.marker}`);
        return value;
      }
      const file = fileAt.get(loaded.references.get(e) as string) as ProviderFile;
      version.update(`\0${file.objectId}@${file.version}`);
      try {
        return utf8.decode(file.contents);
      } catch {
        throw invalidArgument(`${label}: line ${e.line}, column ${e.column}: ${e.fn} ${JSON.stringify(e.name)} is not UTF-8 text (objectEncoding hex or base64 makes binary files), so it cannot be written into a template`);
      }
    },
    limits.maxObjectBytes,
    label,
    LIMIT_FLAGS.maxObjectBytes,
  );
  budget.add(`${label} (file ${JSON.stringify(template.fileName)})`, contents.length);
  return { path: template.fileName, mode: template.mode, contents, objectId: `template/${template.objectName}`, version: version.digest('hex').slice(0, 32) };
}
