import { setMaxListeners } from 'node:events';
import { PodvaultError, invalidArgument, permissionDenied, unavailable } from '../../errors/podvault-error.js';
import type { AzureSdkSettings } from '../../identity/azure-sdk-settings.js';
import { ruleAllows } from '../../identity/binding-policy.js';
import type { IdentityResolver, ResolvedIdentity } from '../../identity/identity-resolver.js';
import { mapLimit } from '../../util/map-limit.js';
import { SingleFlight } from '../../util/single-flight.js';
import { linkedSignal } from '../../util/linked-signal.js';
import type { FetchRequest, FollowedObject, MountedReuse, Provider, ProviderFile } from '../provider.js';
import { checkClassSize, checkObjectCount, checkObjectSize, classLabel, VolumeBudget } from '../fetch-limits.js';
import { AZURE_STACK_CLOUD, loadCloudEnvFile } from './cloud-env-file.js';
import type { FetchLimits } from '../fetch-limits.js';
import { keyVaultError } from './errors.js';
import { fetchRaw, formatObject, isPemCertificateSecret, listVersions } from './object-fetchers.js';
import { CERT_FILE_SUFFIX, KEY_FILE_SUFFIX, splitCertAndKey } from './cert-and-key-files.js';
import { envNameFromFile, renderEnvFile } from './env-file.js';
import type { EnvEntry } from './env-file.js';
import { extractFields } from './field-extraction.js';
import { checkFileNames } from './file-names.js';
import type { RawObject } from './object-fetchers.js';
import { parseAzureParameters } from './parameters.js';
import type { AzureParameters, KeyVaultObject, ObjectVault } from './parameters.js';
import type { AzureCloud } from './clouds.js';
import { VaultClientPool } from './vault-clients.js';
import { HostLimiters, ThrottledError } from './host-limiter.js';
import type { HostLimiter } from './host-limiter.js';
import { withRetries } from './retry-policy.js';
import type { RetryOptions } from './retry-policy.js';
import type { Logger } from '../../log.js';
import type { VaultClients } from './vault-clients.js';
import type { ConfigMapSource } from '../../kube/config-maps.js';
import { readOnce } from '../../kube/config-maps.js';
import { loadTemplate, renderTemplateFile, TemplateBudget } from './template-files.js';
import type { LoadedTemplate } from './template-files.js';
import { openSealedValues } from './sealed-values.js';
// The sealed library's own modules, not its index: that one also exports the CLI's Key Vault
// wrapper, which loads @azure/keyvault-keys (~10 MiB) into every driver at start.
import type { DataKeyUnwrapper } from '../../sealed/data-keys.js';
import { parseVersionedKeyId } from '../../sealed/sealed-key-id.js';

export interface KeyVaultProviderOptions {
  settings: AzureSdkSettings;
  identities: IdentityResolver;
  /** Vault requests of one publish in flight at once. */
  fetchConcurrency: number;
  /** Vault requests in flight to one vault host, node-wide. */
  maxInFlightPerHost: number;
  /** Retry policy of each vault request, and the deadline of a whole publish. */
  retry: Omit<RetryOptions, 'deadline'>;
  /** A publish gives up this long after it began (`FetchRequest.startedAt`, so time queued counts). */
  publishDeadlineMs: number;
  /** Bounds on what one publish may hold in memory (see fetch-limits.ts). */
  limits: FetchLimits;
  /**
   * `--write-cert-and-key-in-separate-files` (default off) and `--construct-pem-chain` (default
   * on), as the Azure provider's flags; a class's parameters of the same names override them.
   */
  certificateFiles?: { writeCertAndKeyInSeparateFiles: boolean; constructPEMChain: boolean };
  /** Where `objectType: template` entries with a `configMap` source read it (absent: such templates fail). */
  configMaps?: ConfigMapSource;
}

/** The Azure provider's defaults for its two certificate flags. */
export const DEFAULT_CERTIFICATE_FILES = { writeCertAndKeyInSeparateFiles: false, constructPEMChain: true };

/** An objectVersion that names one version: empty and `latest` follow the newest. */
function isPinned(objectVersion: string): boolean {
  return objectVersion !== '' && objectVersion !== LATEST_VERSION;
}

/**
 * `<type>/<name>` as the Azure provider names it; an object of another vault than the class's is
 * prefixed by its vault's host, so two vaults' objects of one name are told apart.
 */
function objectIdOf(object: KeyVaultObject, vaultUrl: string): string {
  return `${object.vault.own ? `${new URL(vaultUrl).host}/` : ''}${object.objectType}/${object.objectName}`;
}

function followed(object: KeyVaultObject, vaultUrl: string): FollowedObject {
  return { vaultUrl, objectType: object.objectType, objectName: object.objectName };
}

/** Which file of an item: the object's own, its `.crt`/`.key` pair, or a jmesPath field (by its expression). */
type ItemPart = 'file' | 'crt' | 'key' | { jmesPath: string };

/**
 * `ProviderFile.madeFrom` of one file of an item at a version: everything the bytes depend on
 * besides the vault's answer for that version. The vault URL, because a class's own objects have
 * no vault in their id and version ids are only unique within a vault; the encoding, the format,
 * the PEM chain order and the pair flag (formatObject, splitCertAndKey); the jmesPath expression
 * (a field's file name can stay while its path changes); the history's length, so a longer
 * history is listed again rather than kept at the old count (keptHistory).
 */
function madeFromOf(ctx: FetchContext, object: KeyVaultObject, version: string, part: ItemPart): string {
  return JSON.stringify([ctx.vaultUrl, object.objectType, object.objectName, version, object.objectEncoding, object.objectFormat, object.objectVersionHistory, ctx.constructPEMChain, ctx.writeCertAndKeyInSeparateFiles, part]);
}

/** The files (and env entries) of one item as they are added, each counted against the budget. */
function itemOutput(ctx: FetchContext, item: FetchItem, version: string, from: 'vault' | 'mounted', what: string): { add: (path: string, bytes: Buffer, envName: string | null | undefined, label: string, part: ItemPart) => void; result: ItemOutput } {
  const { object } = item;
  const objectId = objectIdOf(object, ctx.vaultUrl);
  const follows = item.current ? followed(object, ctx.vaultUrl) : undefined;
  const result: ItemOutput = { files: [], env: [] };
  const add = (path: string, bytes: Buffer, envName: string | null | undefined, label: string, part: ItemPart): void => {
    ctx.budget.add(`${what} (file ${JSON.stringify(path)})`, bytes.length);
    result.files.push({ path, mode: object.mode, contents: bytes, objectId, version, from, madeFrom: madeFromOf(ctx, object, version, part), ...(follows ? { follows } : {}) });
    if (envName !== null) result.env.push({ name: envName ?? envNameFromFile(path), value: bytes, mode: object.mode, what: label });
  };
  return { add, result };
}

/** The env file's mode when it holds no variable. */
const DEFAULT_ENV_FILE_MODE = 0o644;
/** The flag that caps a Retry-After wait, for the messages. */
const RETRY_AFTER_FLAG = '--vault-max-retry-after';
/** The objectVersion the provider reads as "the newest" when it lists versions (provider.go). */
const LATEST_VERSION = 'latest';

/** What every vault request of one publish shares. */
interface FetchContext {
  clients: VaultClients;
  vaultUrl: string;
  identity: ResolvedIdentity;
  limiter: HostLimiter;
  retry: RetryOptions;
  /** The caller's cancellation and the publish deadline. */
  signal: AbortSignal;
  log: Logger;
  startedAt: number;
  /** The volume's bytes so far, against --tmpfs-size. */
  budget: VolumeBudget;
  /** The certificate options for this class: its parameters, else the driver's flags. */
  writeCertAndKeyInSeparateFiles: boolean;
  constructPEMChain: boolean;
  /** Runs the publish's jmesPath extractions one after another (see fetchAll). */
  oneExtractionAtATime: <T>(work: () => Promise<T>) => Promise<T>;
  /** A rotation's mounted files it may keep (the version watch); absent on a first publish. */
  reuse?: MountedReuse;
}

/** The files one item became, and the env file variables they give. */
interface ItemOutput {
  files: ProviderFile[];
  env: EnvEntry[];
}

/** One file to produce: an object at a version (empty: current) under a file name. */
interface FetchItem {
  object: KeyVaultObject;
  version: string;
  fileName: string;
  /** Its version is the object's current one (unpinned, or the newest of a history): the version watch follows it. */
  current: boolean;
}

/**
 * The Azure Key Vault provider: the parameters of the upstream Azure provider, the identity from
 * `src/identity/`, the real @azure SDK clients. A publish:
 *   1. parses the class parameters (its size and object count bounded first, see fetch-limits.ts)
 *      and checks the vault origin is allowed;
 *   2. resolves the pod's identity (once per tenant its objects name) and applies its binding's
 *      object rule to each object against that object's vault, before any vault call;
 *   3. expands `objectVersionHistory` into one item per version (the count bounded again);
 *   4. fetches all items concurrently, whichever vault each is in; identical fetches (same vault, identity, object and
 *      version) of publishes running at the same time are made once (see SingleFlight);
 *   5. formats each into the bytes the Azure provider writes; each object's size is checked as it
 *      arrives and the volume's total as each is formatted, before anything is written;
 *   6. adds the extra files: `.crt`/`.key` of certificate-backed secrets, jmesPath fields and the
 *      class's env file, each counted against the volume's budget; then checks that no two files
 *      share a name.
 * Templates (`objectType: template`, template-files.ts) are read and checked between 2 and 3 (their
 * ConfigMaps, their references to the class's objects), their sealed values are unwrapped while
 * step 4 runs, and they are rendered from the fetched objects' files after step 5.
 */
export class KeyVaultProvider implements Provider {
  readonly name = 'azure';
  private readonly pool: VaultClientPool;
  private readonly inFlight = new SingleFlight<RawObject>();
  private readonly limiters: HostLimiters;

  constructor(private readonly options: KeyVaultProviderOptions) {
    this.pool = new VaultClientPool(options.settings);
    this.limiters = new HostLimiters(options.maxInFlightPerHost, options.retry.maxRetryAfterMs);
  }

  async fetch(request: FetchRequest): Promise<ProviderFile[]> {
    const where = classLabel(request.pod.namespace, request.className);
    const customCloud = await this.customCloud(request.parameters, where);
    const params = parseAzureParameters(request.parameters, { limits: this.options.limits, where, ...(customCloud ? { customCloud } : {}) });
    for (const object of params.objects) this.checkVaultAllowed(params, object.vault);
    // Templates are read and checked before any identity is resolved or vault asked.
    const templateBudget = new TemplateBudget(where);
    const configMaps = this.options.configMaps && params.templates.length > 0 ? readOnce(this.options.configMaps) : undefined;
    const templates = await mapLimit(params.templates, this.options.fetchConcurrency, (t) => loadTemplate(t, params.objects, request.pod.namespace, configMaps, templateBudget));
    for (const t of templates) {
      if (t.sealed.length > 0 && t.template.tenantId === '') throw invalidArgument(`${t.label}: it holds sealed values, which are unwrapped as the pod's identity: set parameter tenantId (or the template's own tenantId)`);
    }
    const identities = await this.resolveTenants(params, request);
    for (const object of params.objects) {
      const rule = identities.get(object.vault.tenantId)?.objectRule;
      if (rule && !ruleAllows(rule, object.vault.url, object.objectName)) {
        throw permissionDenied(`pod ${request.pod.namespace}/${request.pod.name} may not read ${object.objectType} ${JSON.stringify(object.objectName)} from ${object.vault.url}: not in ${rule.source}`);
      }
    }
    for (const t of templates) this.checkSealedKeys(params, t, identities);
    const vaults = [...new Set(params.objects.map((o) => o.vault.url))];
    request.log.info({ vault: vaults.length === 1 ? vaults[0] : vaults, identity: [...new Set([...identities.values()].map((i) => i.description))].join('; '), objects: params.objects.length }, 'fetching from Key Vault');
    const deadline = request.startedAt + this.options.publishDeadlineMs;
    const publishSignal = linkedSignal([request.signal], Math.max(0, deadline - Date.now()));
    // Each request in flight listens to it: the objects' fetches and the templates' unwraps run
    // together, past Node's default of 10 listeners (whose warning would suggest a leak).
    setMaxListeners(2 * this.options.fetchConcurrency + 8, publishSignal.signal);
    try {
      return await this.fetchAll(params, templates, identities, deadline, publishSignal.signal, request.log, request.startedAt, where, request.reuse);
    } finally {
      publishSignal.dispose();
    }
  }

  /**
   * `cloudName: AzureStackCloud`: the cloud the class's `cloudEnvFileName` describes, read only
   * from the files the operator allowed (cloud-env-file.ts), after the class's size is checked.
   */
  private async customCloud(parameters: Readonly<Record<string, string>>, where: string): Promise<AzureCloud | undefined> {
    if ((parameters.cloudName ?? '').trim().toLowerCase() !== AZURE_STACK_CLOUD.toLowerCase()) return undefined;
    checkClassSize(where, parameters, this.options.limits);
    return loadCloudEnvFile((parameters.cloudEnvFileName ?? '').trim(), this.options.settings.allowedCloudEnvFiles ?? []);
  }

  /**
   * The pod's identity for each tenant its objects name (the class's, and any object's own
   * `tenantId`): a credential is for one tenant, so each distinct tenant is resolved once per
   * publish, all before any vault call.
   */
  private async resolveTenants(params: AzureParameters, request: FetchRequest): Promise<Map<string, ResolvedIdentity>> {
    const tenants = [...new Set([...params.objects.map((o) => o.vault.tenantId), ...params.templates.map((t) => t.tenantId).filter((t) => t !== '')])];
    const resolved = await mapLimit(tenants, this.options.fetchConcurrency, (tenantId) =>
      this.options.identities.resolve(
        { pod: request.pod, tenantId, cloudAuthorityHost: params.cloud.authorityHost, parameters: params.identity, secrets: request.secrets, tokens: request.tokens },
        request.log,
      ),
    );
    return new Map(tenants.map((t, i) => [t, resolved[i] as ResolvedIdentity]));
  }

  private async fetchAll(params: AzureParameters, templates: readonly LoadedTemplate[], identities: ReadonlyMap<string, ResolvedIdentity>, deadline: number, signal: AbortSignal, log: Logger, startedAt: number, where: string, reuse: MountedReuse | undefined): Promise<ProviderFile[]> {
    const budget = new VolumeBudget(where, this.options.limits);
    const retry = { ...this.options.retry, deadline };
    // The node has one field-extraction worker and one queue for every tenant: a publish's
    // objects fetched 16 at a time would each queue a value, so 4 volumes filled the queue
    // (others: RESOURCE_EXHAUSTED) and held the worker for 64 time limits. One value at a time
    // per publish puts each publish in line once.
    let extractions: Promise<unknown> = Promise.resolve();
    const oneExtractionAtATime = <T>(work: () => Promise<T>): Promise<T> => {
      const turn = extractions.then(work, work);
      extractions = turn.catch(() => undefined);
      return turn;
    };
    // One context per vault and tenant; all of them share the publish's signal, deadline and budget.
    const contexts = new Map<string, FetchContext>();
    const contextOf = (vault: ObjectVault): FetchContext => {
      const key = `${vault.url}|${vault.tenantId}`;
      let ctx = contexts.get(key);
      if (!ctx) {
        const identity = identities.get(vault.tenantId) as ResolvedIdentity;
        ctx = {
          clients: this.pool.get(vault.url, identity, this.isCloudVault(params.cloud, vault.url), params.cloud.keyVaultResource),
          vaultUrl: vault.url,
          identity,
          limiter: this.limiters.get(new URL(vault.url).host),
          retry,
          signal,
          log,
          startedAt,
          budget,
          writeCertAndKeyInSeparateFiles: params.files.writeCertAndKeyInSeparateFiles ?? this.certificateFiles.writeCertAndKeyInSeparateFiles,
          constructPEMChain: params.files.constructPEMChain ?? this.certificateFiles.constructPEMChain,
          oneExtractionAtATime,
          ...(reuse ? { reuse } : {}),
        };
        contexts.set(key, ctx);
      }
      return ctx;
    };
    const limit = this.options.fetchConcurrency;
    // The objects of every vault are expanded and fetched together, under the one concurrency limit.
    const items = (await mapLimit(params.objects, limit, (o) => this.expand(contextOf(o.vault), o))).flat();
    // jmesPath fields are files too (the .crt/.key pairs depend on the vault's answer: the budget bounds them).
    checkObjectCount(where, items.reduce((n, item) => n + 1 + item.object.jmesPath.length, templates.length), this.options.limits, true);
    // Sealed values are unwrapped while the objects are fetched: a template costs no extra round trip.
    const [outputs, sealed] = await Promise.all([
      mapLimit(items, limit, (item) => this.fetchItem(contextOf(item.object.vault), item)),
      mapLimit(templates, limit, (t) => openSealedValues(t.sealed, this.unwrapper(t, contextOf), t.label, signal)),
    ]);
    const files = outputs.flatMap((o) => o.files);
    if (templates.length > 0) {
      // References name files of the fetched objects (their own, or jmesPath fields): nothing is fetched again.
      const fileAt = new Map(files.map((f) => [f.path, f]));
      templates.forEach((t, i) => files.push(renderTemplateFile(t, fileAt, sealed[i] as Map<string, string>, this.options.limits, budget)));
    }
    const envFile = params.files.envFile;
    if (envFile !== undefined) {
      const included = outputs.flatMap((o) => o.env);
      const contents = renderEnvFile(envFile, included);
      budget.add(`the env file ${JSON.stringify(envFile)}`, contents.length);
      // Never more readable than the least readable file it copies.
      const mode = included.reduce((m, e) => m & e.mode, 0o777 as number);
      files.push({ path: envFile, mode: included.length > 0 ? mode : DEFAULT_ENV_FILE_MODE, contents, objectId: `envFile/${envFile}`, version: '' });
    }
    checkFileNames(where, files);
    return files;
  }

  private get certificateFiles(): { writeCertAndKeyInSeparateFiles: boolean; constructPEMChain: boolean } {
    return this.options.certificateFiles ?? DEFAULT_CERTIFICATE_FILES;
  }

  /** One vault request under the node's retry policy and the host's limiter. */
  private request<T>(ctx: FetchContext, what: string, call: (signal: AbortSignal) => Promise<T>): Promise<T> {
    return withRetries(call, ctx.limiter, ctx.retry, ctx.signal, ctx.log, what).catch((err: unknown) => {
      if (err instanceof ThrottledError) {
        const status = (err.cause as { statusCode?: unknown } | undefined)?.statusCode;
        throw unavailable(
          `vault ${ctx.vaultUrl}: ${what}: ${typeof status === 'number' ? `HTTP ${status}: ` : ''}Key Vault asked to wait ${Math.ceil(err.waitMs / 1000)} s (Retry-After, capped by ${RETRY_AFTER_FLAG}), past this publish's deadline; will retry`,
          err,
        );
      }
      throw keyVaultError(err, ctx.vaultUrl, what);
    });
  }

  /** `objectVersionHistory: N` (N > 1): files `<alias>/0` (newest) … `<alias>/N-1`, from the pinned version (or the newest, for `latest`) down. */
  private async expand(ctx: FetchContext, object: KeyVaultObject): Promise<FetchItem[]> {
    const pinned = isPinned(object.objectVersion);
    if (object.objectVersionHistory <= 1) return [{ object, version: object.objectVersion, fileName: object.fileName, current: !pinned }];
    const kept = await this.keptHistory(ctx, object);
    if (kept) return kept;
    const what = `${object.objectType} ${JSON.stringify(object.objectName)} versions`;
    const versions = (await this.request(ctx, what, (signal) => listVersions(ctx.clients, object.objectType, object.objectName, signal))).filter((v) => v.enabled);
    // The provider's getLatestNKeyVaultObjects starts at the newest for "" and for "latest"; only
    // here: without a history it asks the vault for a version named "latest", and so do we.
    const newest = !pinned;
    const start = newest ? 0 : versions.findIndex((v) => v.version === object.objectVersion);
    if (start < 0) throw keyVaultError(Object.assign(new Error('version not found'), { statusCode: 404 }), ctx.vaultUrl, `${object.objectType} ${JSON.stringify(object.objectName)} version ${object.objectVersion}`);
    return versions.slice(start, start + object.objectVersionHistory).map((v, i) => ({ object, version: v.version, fileName: `${object.fileName}/${i}`, current: newest && i === 0 }));
  }

  /**
   * A rotation of a version history whose start has not moved (pinned, or the newest still the
   * mounted `/0` per the version watch): the versions mounted, each now pinned, so no listing
   * is made and each is read back (`reusedItem`). Undefined: list the versions again, also when
   * the mounted history was made otherwise (another vault, another length: `madeFromOf`), since
   * its files are then not the ones this class's listing gives.
   */
  private async keptHistory(ctx: FetchContext, object: KeyVaultObject): Promise<FetchItem[] | undefined> {
    const { reuse } = ctx;
    if (!reuse) return undefined;
    const id = objectIdOf(object, ctx.vaultUrl);
    const first = reuse.mounted[`${id}:${object.fileName}/0`];
    if (first === undefined || reuse.madeFrom[`${object.fileName}/0`] !== madeFromOf(ctx, object, first, 'file')) return undefined;
    const pinned = isPinned(object.objectVersion);
    if (pinned ? first !== object.objectVersion : (await reuse.currentVersion(followed(object, ctx.vaultUrl))) !== first) return undefined;
    const items: FetchItem[] = [];
    for (let i = 0; i < object.objectVersionHistory; i++) {
      const version = reuse.mounted[`${id}:${object.fileName}/${i}`];
      if (version === undefined) break;
      items.push({ object, version, fileName: `${object.fileName}/${i}`, current: !pinned && i === 0 });
    }
    return items;
  }

  private async fetchItem(ctx: FetchContext, item: FetchItem): Promise<ItemOutput> {
    const { object, version } = item;
    const { vaultUrl } = ctx;
    const what = `${object.objectType} ${JSON.stringify(object.objectName)}${version ? ` version ${version}` : ''}`;
    const kept = ctx.reuse ? await this.reusedItem(ctx, item, ctx.reuse, what) : undefined;
    if (kept) return kept;
    // The size is checked once per shared fetch, as the object arrives and before any copy.
    const raw = await this.inFlight.run(`${vaultUrl}|${ctx.identity.key}|${object.objectType}|${object.objectName}|${version}`, ctx.startedAt, async () => {
      const fetched = await this.request(ctx, what, (signal) => fetchRaw(ctx.clients, object.objectType, object.objectName, version, signal));
      checkObjectSize(`vault ${vaultUrl}: ${what}`, Buffer.byteLength(fetched.text, 'utf8'), this.options.limits);
      return fetched;
    });
    let contents: Buffer;
    try {
      contents = await formatObject(raw, object, { constructPEMChain: ctx.constructPEMChain });
    } catch (err) {
      throw err instanceof PodvaultError ? err.withContext(`vault ${vaultUrl}: ${what}`) : err;
    }
    const out = itemOutput(ctx, item, raw.version, 'vault', what);
    out.add(item.fileName, contents, object.envName, `${what} (file ${JSON.stringify(item.fileName)})`, 'file');
    if (ctx.writeCertAndKeyInSeparateFiles && isPemCertificateSecret(raw, object)) {
      // As the Azure provider: beside the combined file, not in the env file (the combined one is).
      const { cert, key } = splitCertAndKey(contents.toString('utf8'));
      out.add(item.fileName + CERT_FILE_SUFFIX, Buffer.from(cert, 'utf8'), null, '', 'crt');
      out.add(item.fileName + KEY_FILE_SUFFIX, Buffer.from(key, 'utf8'), null, '', 'key');
    }
    if (object.jmesPath.length > 0) {
      const values = await ctx.oneExtractionAtATime(() => extractFields(contents, object.jmesPath, `vault ${vaultUrl}: ${what}`, this.options.limits.maxObjectBytes, ctx.signal));
      object.jmesPath.forEach((field, i) => out.add(field.fileName, values[i] ?? Buffer.alloc(0), field.envName, `${what} jmesPath ${JSON.stringify(field.path)} (file ${JSON.stringify(field.fileName)})`, { jmesPath: field.path }));
    }
    return out.result;
  }

  /**
   * A rotation's item whose mounted version is still the one it would fetch (pinned and the same
   * id, or current per the version watch): its files read back from the volume, exactly the set
   * a fetch of that version makes (the combined file, its `.crt`/`.key` when the class writes them
   * and they are mounted, each jmesPath field), each counted against the volume's budget again.
   * Undefined (fetch it) when any of them is missing or not readable, or the version moved, or
   * it was made otherwise than the class makes it now (`madeFromOf`: an edit between rotations).
   */
  private async reusedItem(ctx: FetchContext, item: FetchItem, reuse: MountedReuse, what: string): Promise<ItemOutput | undefined> {
    const { object } = item;
    const id = objectIdOf(object, ctx.vaultUrl);
    const version = reuse.mounted[`${id}:${item.fileName}`];
    if (version === undefined || version === '') return undefined;
    if (item.current ? (await reuse.currentVersion(followed(object, ctx.vaultUrl))) !== version : item.version !== version) return undefined;
    const paths: Array<{ path: string; envName: string | null | undefined; label: string; part: ItemPart }> = [{ path: item.fileName, envName: object.envName, label: `${what} (file ${JSON.stringify(item.fileName)})`, part: 'file' }];
    const pair = [item.fileName + CERT_FILE_SUFFIX, item.fileName + KEY_FILE_SUFFIX];
    // Whether a pair belongs depends on the vault's answer (a PEM certificate-backed secret): it
    // does when it was written, with the flag on (the flag is part of madeFrom, so turning it on
    // fetches the object again).
    if (ctx.writeCertAndKeyInSeparateFiles && pair.every((p) => reuse.mounted[`${id}:${p}`] === version)) paths.push({ path: pair[0]!, envName: null, label: '', part: 'crt' }, { path: pair[1]!, envName: null, label: '', part: 'key' });
    for (const field of object.jmesPath) paths.push({ path: field.fileName, envName: field.envName, label: `${what} jmesPath ${JSON.stringify(field.path)} (file ${JSON.stringify(field.fileName)})`, part: { jmesPath: field.path } });
    if (paths.some((p) => reuse.mounted[`${id}:${p.path}`] !== version || reuse.madeFrom[p.path] !== madeFromOf(ctx, object, version, p.part))) return undefined;
    const bytes = await reuse.read(paths.map((p) => p.path));
    if (paths.some((p) => !bytes.has(p.path))) return undefined;
    const out = itemOutput(ctx, item, version, 'mounted', what);
    for (const p of paths) out.add(p.path, bytes.get(p.path) as Buffer, p.envName, p.label, p.part);
    return out.result;
  }

  /**
   * The keys a template's sealed values name, checked before any vault call: each key's vault must
   * be one the class could name (the cloud's vault domain or an operator-allowed origin: a marker
   * is its sealer's text, and the pod identity's token would go there), and the pod's binding rule
   * must allow the key's name. The message names the template, the marker's line and the key.
   */
  private checkSealedKeys(params: AzureParameters, loaded: LoadedTemplate, identities: ReadonlyMap<string, ResolvedIdentity>): void {
    const rule = identities.get(loaded.template.tenantId)?.objectRule;
    for (const marker of loaded.sealed) {
      const at = `${loaded.label}: line ${marker.line}, column ${marker.column}`;
      const key = parseVersionedKeyId(marker.keyId);
      if (typeof key === 'string') throw invalidArgument(`${at}: the sealed value's key id ${key}`);
      try {
        this.checkVaultAllowed(params, { url: key.vaultUrl, explicit: true, tenantId: loaded.template.tenantId, source: 'a sealed value names key vault', own: true });
      } catch (err) {
        throw err instanceof PodvaultError ? err.withContext(at) : err;
      }
      if (rule && !ruleAllows(rule, key.vaultUrl, key.name)) throw permissionDenied(`${at}: the pod may not use key ${JSON.stringify(key.name)} of ${key.vaultUrl}: not in ${rule.source}`);
    }
  }

  /**
   * Key Vault's unwrapKey for a template's sealed values (their keys checked by checkSealedKeys),
   * as the pod's identity for the template's tenant, through the same clients, limiter and retry
   * policy as every vault read. A refusal names the key, never a value.
   */
  private unwrapper(loaded: LoadedTemplate, contextOf: (vault: ObjectVault) => FetchContext): DataKeyUnwrapper {
    const { template } = loaded;
    return {
      unwrap: async (keyId, algorithm, wrapped, signal) => {
        const key = parseVersionedKeyId(keyId);
        if (typeof key === 'string') throw invalidArgument(`the sealed value's key id ${key}`);
        const shared = contextOf({ url: key.vaultUrl, explicit: true, tenantId: template.tenantId, source: 'a sealed value names key vault', own: true });
        // openMarkers aborts the template's other unwraps at its first failure: they stop too.
        const ctx = signal ? { ...shared, signal: AbortSignal.any([shared.signal, signal]) } : shared;
        const crypto = await ctx.clients.cryptography(keyId);
        const what = `key ${JSON.stringify(key.name)} version ${key.version}: unwrapKey`;
        try {
          const result = await this.request(ctx, what, (abortSignal) => crypto.unwrapKey(algorithm, wrapped, { abortSignal }));
          return result.result;
        } catch (err) {
          if (err instanceof PodvaultError && err.kind === 'permission-denied') {
            throw new PodvaultError('permission-denied', `${err.message}; the pod's identity needs Key Vault Crypto Service Encryption User (unwrapKey) on the key`, { cause: err.cause });
          }
          // Key Vault's 400: the wrapped data key is not one this key version made (an edited or
          // foreign marker): the marker's mistake, as the KMS plugin says it, not an internal error.
          if (err instanceof PodvaultError && (err.cause as { statusCode?: unknown } | undefined)?.statusCode === 400) {
            throw invalidArgument(`vault ${key.vaultUrl}: ${what}: Key Vault refused the wrapped data key (HTTP 400): it was not wrapped by this key version (an edited marker, or one sealed with another key)`, err.cause);
          }
          throw err;
        }
      },
    };
  }

  /**
   * A class, or one of its objects, may name its vault with `vaultUri`. Outside the cloud's own
   * vault domain the driver would hand the pod identity's token to whatever host that is, so such
   * origins must be allowed by the operator (`--allow-vault-uri`). Checked per object, before any
   * identity is resolved; the message names the parameter (and object) that named the origin.
   */
  private checkVaultAllowed(params: AzureParameters, vault: ObjectVault): void {
    if (!vault.explicit || this.isCloudVault(params.cloud, vault.url)) return;
    if (!this.options.settings.allowedVaultOrigins.includes(vault.url)) {
      throw invalidArgument(`${vault.source} ${vault.url} is outside ${params.cloud.vaultSuffix}; the node's operator must allow it with --allow-vault-uri`);
    }
  }

  private isCloudVault(cloud: AzureCloud, vaultUrl: string): boolean {
    const url = new URL(vaultUrl);
    return url.hostname.endsWith(`.${cloud.vaultSuffix}`) && url.port === '';
  }
}
