import { hostname } from 'node:os';
import { z } from 'zod';
import { describeZodError } from '../util/zod-error.js';
import { managedIdentityId, parseManagedIdentityGrant } from '../identity/managed-identity-policy.js';
import type { ManagedIdentityGrant } from '../identity/managed-identity-policy.js';
import { DEFAULT_PKCS12_MAX_ITERATIONS, DEFAULT_PKCS12_TIME_LIMIT } from '../untrusted/pkcs12-converter.js';
import { tokenProxyUrlProblem } from '../identity/token-proxy-config.js';
import type { TokenProxyConfig } from '../identity/token-proxy-config.js';
import { DEFAULT_VERSIONS_NAMESPACE } from '../version-watch/versions-resource.js';


export const DEFAULT_DRIVER_NAME = 'csi.podvault.dev';
export const DEFAULT_ENDPOINT = 'unix:///csi/csi.sock';
export const DEFAULT_KUBELET_DIR = '/var/lib/kubelet';
export const DEFAULT_TMPFS_SIZE = '4Mi';
export const DEFAULT_FETCH_CONCURRENCY = 16;

/** Where SecretProviderClass objects come from. */
export type ClassSourceConfig = { kind: 'standalone'; dir: string } | { kind: 'kubernetes'; kubeconfig?: string };

/**
 * Everything the driver is told at start, validated once. Nothing reads `process.env` after this
 * is built.
 */
export interface DriverConfig {
  endpoint: string;
  nodeId: string;
  driverName: string;
  kubeletDir: string;
  tmpfsSizeBytes: number;
  /**
   * Mount with mount(8)/umount(8) processes instead of podvault's mount(2) addon
   * (`--mount-utility`); the driver also falls back to them when the addon does not load.
   */
  mountUtility: boolean;
  classSource: ClassSourceConfig;
  logLevel: string;
  /** PEM bundle file of extra CAs trusted for Entra ID and Key Vault. */
  caFile?: string;
  /** Entra ID authority host overriding the cloud's. */
  authorityHost?: string;
  /** Vault origins a class may name with `vaultUri` outside the cloud's vault domain. */
  allowedVaultOrigins: string[];
  /** Node files a class may name with `cloudEnvFileName` (cloudName AzureStackCloud), absolute paths. */
  allowedCloudEnvFiles: string[];
  fetchConcurrency: number;
  /** Honour AzureIdentityBindings and AzureIdentities outside the pod's namespace. */
  clusterWideBindings: boolean;
  /** Allow classes to use the node's own managed identity (useVMManagedIdentity). */
  allowNodeIdentity: boolean;
  /** --allow-managed-identity NAMESPACE=ID: managed identities each namespace may bind (type 0). */
  managedIdentityGrants: ManagedIdentityGrant[];
  /** --node-managed-identity: the VM's and kubelet's own identities (normalised ids). */
  nodeManagedIdentities: string[];
  /** IMDS base URL for managed identities (a pod-identity NMI or a local double). */
  imdsEndpoint?: string;
  /** Refuse publishes without a valid service-account token for `podTokenAudience`. */
  requirePodToken: boolean;
  podTokenAudience: string;
  /** Standalone mode: JWKS file and issuer of the cluster's service-account tokens. */
  serviceAccountJwks?: string;
  serviceAccountIssuer?: string;
  /** Each vault request is given up (and retried) after this long. */
  vaultRequestTimeoutMs: number;
  /** Attempts per vault request, the first included. */
  vaultMaxAttempts: number;
  /** Vault requests in flight to one vault host, node-wide. */
  vaultMaxInFlight: number;
  /** A whole publish gives up after this long (under the kubelet's 2-minute call timeout). */
  publishDeadlineMs: number;
  /** A mounted volume is refetched when its files are older than this. */
  rotationIntervalMs: number;
  /** host:port of the metrics and health server; none when absent. */
  metricsAddr?: string;
  /** Where non-secret volume facts are kept across restarts; none when absent. */
  stateDir?: string;
  // Bounds on what publishes may hold in memory (src/providers/fetch-limits.ts, src/driver/publish-gate.ts).
  /** Bytes of a class's spec.parameters, checked before parsing. */
  maxClassBytes: number;
  /** Objects per class, objectVersionHistory expanded. */
  maxClassObjects: number;
  /** Bytes of one vault object as it arrives. */
  maxObjectBytes: number;
  /** Contents of all of the node's volumes together, as tmpfs counts them (the driver's cgroup pays). */
  maxNodeVolumeBytes: number;
  /** Publishes (and rotations) holding fetched data at once. */
  maxConcurrentPublishes: number;
  /** Publishes waiting for one of those slots; more are answered RESOURCE_EXHAUSTED. */
  maxQueuedPublishes: number;
  /** Ceiling of a Key Vault Retry-After wait and of the host-wide pause it causes. */
  vaultMaxRetryAfterMs: number;
  /** PKCS#12 bundles (vault certificates, type-2 identities): iteration cap and time limit. */
  pkcs12MaxIterations: number;
  pkcs12TimeLimitMs: number;
  /** The node's AKS token proxy for `useAzureTokenProxy` classes (identity binding); none when absent. */
  azureTokenProxy?: TokenProxyConfig;
  /** The Azure provider's flags of these names; a class's parameters override them. */
  writeCertAndKeyInSeparateFiles: boolean;
  constructPEMChain: boolean;
  /**
   * `--version-watch`: rotations keep the objects whose version the watcher's VaultObjectVersions
   * (in `namespace`) say is still current, and volumes rotate when a version moves. Kubernetes mode only.
   */
  versionWatch?: { namespace: string };
}

/** Raw option values as the CLI hands them over (strings), plus the environment fallbacks. */
export interface DriverFlags {
  endpoint?: string;
  nodeId?: string;
  driverName?: string;
  kubeletDir?: string;
  tmpfsSize?: string;
  mountUtility?: boolean;
  standalone?: string;
  kubeconfig?: string;
  logLevel?: string;
  caFile?: string;
  authorityHost?: string;
  allowVaultUri?: string[];
  allowCloudEnvFile?: string[];
  fetchConcurrency?: string;
  clusterWideBindings?: boolean;
  allowNodeIdentity?: boolean;
  allowManagedIdentity?: string[];
  nodeManagedIdentity?: string[];
  imdsEndpoint?: string;
  requirePodToken?: boolean;
  podTokenAudience?: string;
  serviceAccountJwks?: string;
  serviceAccountIssuer?: string;
  vaultRequestTimeout?: string;
  vaultMaxAttempts?: string;
  vaultMaxInFlight?: string;
  publishDeadline?: string;
  rotationInterval?: string;
  metricsAddr?: string;
  stateDir?: string;
  maxClassSize?: string;
  maxClassObjects?: string;
  maxObjectSize?: string;
  maxNodeVolumeSize?: string;
  maxConcurrentPublishes?: string;
  maxQueuedPublishes?: string;
  vaultMaxRetryAfter?: string;
  pkcs12MaxIterations?: string;
  pkcs12TimeLimit?: string;
  azureTokenProxy?: string;
  azureTokenProxyCaFile?: string;
  azureTokenProxySniName?: string;
  /** `--flag`, `--flag=true` or `--flag=false`, as the Azure provider's Go flags take them. */
  writeCertAndKeyInSeparateFiles?: string | boolean;
  constructPemChain?: string | boolean;
  versionWatch?: string | boolean;
  versionWatchNamespace?: string;
}

export const DEFAULT_VAULT_REQUEST_TIMEOUT = '10s';
export const DEFAULT_VAULT_MAX_ATTEMPTS = 5;
export const DEFAULT_VAULT_MAX_IN_FLIGHT = 64;
export const DEFAULT_PUBLISH_DEADLINE = '100s';
export const DEFAULT_ROTATION_INTERVAL = '2m';
/**
 * Memory bounds (why these values: src/providers/fetch-limits.ts). A real class lists tens of
 * objects in a few KB, a Key Vault secret is at most 25 KB; 8 publishes × the 4Mi tmpfs keep
 * fetched data under 32 MiB, inside the DaemonSet's 256Mi limit with room for the process itself.
 */
export const DEFAULT_MAX_CLASS_SIZE = '64Ki';
export const DEFAULT_MAX_CLASS_OBJECTS = 256;
export const DEFAULT_MAX_OBJECT_SIZE = '128Ki';
/**
 * tmpfs pages are charged to the driver's memory cgroup: 64Mi of contents fits the DaemonSet's
 * 256Mi limit beside the driver's own ~150 MiB (client-node, the PKCS#12 worker) and 8 publishes
 * in flight; real volumes hold a few KiB, so 110 pods never come near it.
 */
export const DEFAULT_MAX_NODE_VOLUME_SIZE = '64Mi';
export const DEFAULT_MAX_CONCURRENT_PUBLISHES = 8;
export const DEFAULT_MAX_QUEUED_PUBLISHES = 256;
/** Key Vault's own throttling asks for seconds; a day (a hostile origin) must not freeze a host. */
export const DEFAULT_VAULT_MAX_RETRY_AFTER = '60s';
/**
 * V8 settings the DaemonSet gives the driver (NODE_OPTIONS) and the bench measures with. A 1 MiB
 * young generation keeps the standalone driver under 100 MiB at no measurable latency cost. A
 * 128 MiB old generation: V8 sizes its first full-GC threshold from this maximum (a quarter of the
 * node's memory by default), so the ~50 MiB that @kubernetes/client-node leaves live at start is
 * collected around instead of grown past (bench, Kubernetes mode: ~18 MiB less RSS, no measurable
 * CPU cost). It is also under the DaemonSet's 256Mi limit with the node's tmpfs contents (64Mi)
 * beside it, and far above what publishes hold (8 × the 4Mi tmpfs). One V8 platform worker
 * thread (`--v8-pool-size=1`, default: one per core, at most 4) for concurrent GC and TurboFan
 * compiles: each worker that compiles keeps its own malloc arena's pages resident (with
 * DRIVER_MALLOC_ARENA_MAX, bench Kubernetes mode 132–136 → 122 MiB after 733 publishes; the
 * driver's CPU per publish unchanged within the bench's noise).
 */
export const DRIVER_NODE_OPTIONS = '--max-semi-space-size=1 --max-old-space-size=128 --v8-pool-size=1';

/**
 * glibc's MALLOC_ARENA_MAX for the driver (DaemonSet env; the bench sets it too). glibc gives each
 * thread that allocates (libuv's pool, V8's workers, the PKCS#12 worker) an arena of its own, up to
 * 8 per core, and the pages freed in one are seldom given back: in the bench, Kubernetes mode
 * grew 20 MiB over 733 publishes of which the JS heap was 7 MiB. Two arenas (the main thread's
 * and one shared): 132–136 → 122–124 MiB after those publishes; no measurable CPU cost, the
 * driver's threads rarely allocate at once.
 */
export const DRIVER_MALLOC_ARENA_MAX = '2';

/** A Go-style boolean flag: bare (`true`), or `=true`/`=false` in strconv.ParseBool's spellings. */
export function parseBoolFlag(value: string | boolean): boolean {
  if (typeof value === 'boolean') return value;
  if (['1', 't', 'T', 'true', 'TRUE', 'True'].includes(value)) return true;
  if (['0', 'f', 'F', 'false', 'FALSE', 'False'].includes(value)) return false;
  throw new Error(`${JSON.stringify(value)} must be true or false`);
}

/** `500ms`, `10s`, `2m` → milliseconds. */
export function parseDuration(value: string): number {
  const match = /^(\d+)(ms|s|m)$/.exec(value.trim());
  if (!match) throw new Error(`duration ${JSON.stringify(value)} must be a number followed by ms, s or m`);
  return Number(match[1]) * (match[2] === 'ms' ? 1 : match[2] === 's' ? 1000 : 60_000);
}

const SIZE = /^(\d+)(Ki|Mi|Gi|k|m|g)?$/;
const UNITS: Record<string, number> = { '': 1, k: 1024, Ki: 1024, m: 1024 ** 2, Mi: 1024 ** 2, g: 1024 ** 3, Gi: 1024 ** 3 };

/** `4Mi`, `512Ki`, `1048576` → bytes. */
export function parseSize(value: string): number {
  const match = SIZE.exec(value.trim());
  if (!match) throw new Error(`size ${JSON.stringify(value)} must be a number of bytes with an optional Ki, Mi or Gi suffix`);
  return Number(match[1]) * (UNITS[match[2] ?? ''] ?? 1);
}

const httpsOrigin = z.string().transform((value, ctx) => {
  try {
    const url = new URL(value);
    if (url.protocol === 'https:' && (url.pathname === '/' || url.pathname === '')) return url.origin;
  } catch {
    /* reported below */
  }
  ctx.addIssue({ code: 'custom', message: `${JSON.stringify(value)} must be an https:// origin` });
  return z.NEVER;
});

const configSchema = z.object({
  endpoint: z.string().min(1),
  nodeId: z.string().min(1, 'is required (--node-id or NODE_NAME)').max(192),
  driverName: z.string().regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, 'must be a DNS name such as csi.podvault.dev').max(63),
  kubeletDir: z.string().startsWith('/', 'must be an absolute path'),
  tmpfsSizeBytes: z.number().int().min(64 * 1024, 'must be at least 64Ki').max(1024 ** 3, 'must be at most 1Gi'),
  mountUtility: z.boolean(),
  classSource: z.union([
    z.object({ kind: z.literal('standalone'), dir: z.string().min(1) }),
    z.object({ kind: z.literal('kubernetes'), kubeconfig: z.string().optional() }),
  ]),
  logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']),
  caFile: z.string().optional(),
  authorityHost: httpsOrigin.optional(),
  allowedVaultOrigins: z.array(httpsOrigin),
  allowedCloudEnvFiles: z.array(z.string().regex(/^\/[^\0]*$/, 'must be an absolute path')),
  fetchConcurrency: z.number().int().min(1).max(64),
  clusterWideBindings: z.boolean(),
  allowNodeIdentity: z.boolean(),
  managedIdentityGrants: z.array(z.object({ namespace: z.string().min(1), id: z.string().min(1) })),
  nodeManagedIdentities: z.array(z.string().min(1)),
  imdsEndpoint: z.url({ protocol: /^https?$/ }).optional(),
  requirePodToken: z.boolean(),
  podTokenAudience: z.string().min(1).max(253),
  serviceAccountJwks: z.string().optional(),
  serviceAccountIssuer: z.string().optional(),
  vaultRequestTimeoutMs: z.number().int().min(100).max(120_000),
  vaultMaxAttempts: z.number().int().min(1).max(20),
  vaultMaxInFlight: z.number().int().min(1).max(1024),
  publishDeadlineMs: z.number().int().min(1000).max(600_000),
  rotationIntervalMs: z.number().int().min(0),
  stateDir: z.string().startsWith('/', 'must be an absolute path').optional(),
  maxClassBytes: z.number().int().min(1024, 'must be at least 1Ki').max(1024 ** 2, 'must be at most 1Mi'),
  maxClassObjects: z.number().int().min(1).max(100_000),
  maxObjectBytes: z.number().int().min(1024, 'must be at least 1Ki').max(64 * 1024 ** 2, 'must be at most 64Mi'),
  maxNodeVolumeBytes: z.number().int().min(64 * 1024, 'must be at least 64Ki').max(64 * 1024 ** 3, 'must be at most 64Gi'),
  maxConcurrentPublishes: z.number().int().min(1).max(1024),
  maxQueuedPublishes: z.number().int().min(0).max(100_000),
  vaultMaxRetryAfterMs: z.number().int().min(0).max(600_000, 'must be at most 10m'),
  metricsAddr: z.string().regex(/^(\[[0-9a-fA-F:]+\]|[-.A-Za-z0-9]*):\d{1,5}$/, 'must be host:port or :port').optional(),
  pkcs12MaxIterations: z.number().int().min(1).max(10_000_000),
  pkcs12TimeLimitMs: z.number().int().min(100).max(120_000),
  writeCertAndKeyInSeparateFiles: z.boolean(),
  constructPEMChain: z.boolean(),
});

export function buildDriverConfig(flags: DriverFlags, env: NodeJS.ProcessEnv): DriverConfig {
  const parsed0 = <T, V = string>(flag: string, parse: (v: V) => T, value: V): T => {
    try {
      return parse(value);
    } catch (err) {
      throw new Error(`${flag}: ${(err as Error).message}`);
    }
  };
  const tmpfsSizeBytes = parsed0('--tmpfs-size', parseSize, flags.tmpfsSize ?? DEFAULT_TMPFS_SIZE);
  const standalone = flags.standalone;
  const candidate = {
    endpoint: flags.endpoint ?? env.CSI_ENDPOINT ?? DEFAULT_ENDPOINT,
    nodeId: flags.nodeId ?? env.NODE_NAME ?? (standalone ? hostname() : ''),
    driverName: flags.driverName ?? DEFAULT_DRIVER_NAME,
    kubeletDir: (flags.kubeletDir ?? DEFAULT_KUBELET_DIR).replace(/\/+$/, '') || '/',
    tmpfsSizeBytes,
    mountUtility: flags.mountUtility ?? false,
    classSource: standalone ? { kind: 'standalone', dir: standalone } : { kind: 'kubernetes', ...(flags.kubeconfig ? { kubeconfig: flags.kubeconfig } : {}) },
    logLevel: flags.logLevel ?? 'info',
    caFile: flags.caFile,
    authorityHost: flags.authorityHost,
    allowedVaultOrigins: flags.allowVaultUri ?? [],
    allowedCloudEnvFiles: flags.allowCloudEnvFile ?? [],
    fetchConcurrency: Number(flags.fetchConcurrency ?? DEFAULT_FETCH_CONCURRENCY),
    clusterWideBindings: flags.clusterWideBindings ?? false,
    allowNodeIdentity: flags.allowNodeIdentity ?? false,
    managedIdentityGrants: (flags.allowManagedIdentity ?? []).map((v) => parsed0('--allow-managed-identity', parseManagedIdentityGrant, v)),
    nodeManagedIdentities: (flags.nodeManagedIdentity ?? []).map((v) => parsed0('--node-managed-identity', managedIdentityId, v)),
    imdsEndpoint: flags.imdsEndpoint,
    requirePodToken: flags.requirePodToken ?? false,
    podTokenAudience: flags.podTokenAudience ?? flags.driverName ?? DEFAULT_DRIVER_NAME,
    serviceAccountJwks: flags.serviceAccountJwks,
    serviceAccountIssuer: flags.serviceAccountIssuer,
    vaultRequestTimeoutMs: parsed0('--vault-request-timeout', parseDuration, flags.vaultRequestTimeout ?? DEFAULT_VAULT_REQUEST_TIMEOUT),
    vaultMaxAttempts: Number(flags.vaultMaxAttempts ?? DEFAULT_VAULT_MAX_ATTEMPTS),
    vaultMaxInFlight: Number(flags.vaultMaxInFlight ?? DEFAULT_VAULT_MAX_IN_FLIGHT),
    publishDeadlineMs: parsed0('--publish-deadline', parseDuration, flags.publishDeadline ?? DEFAULT_PUBLISH_DEADLINE),
    rotationIntervalMs: parsed0('--rotation-interval', parseDuration, flags.rotationInterval ?? DEFAULT_ROTATION_INTERVAL),
    metricsAddr: flags.metricsAddr,
    stateDir: flags.stateDir,
    maxClassBytes: parsed0('--max-class-size', parseSize, flags.maxClassSize ?? DEFAULT_MAX_CLASS_SIZE),
    maxClassObjects: Number(flags.maxClassObjects ?? DEFAULT_MAX_CLASS_OBJECTS),
    maxObjectBytes: parsed0('--max-object-size', parseSize, flags.maxObjectSize ?? DEFAULT_MAX_OBJECT_SIZE),
    maxNodeVolumeBytes: parsed0('--max-node-volume-size', parseSize, flags.maxNodeVolumeSize ?? DEFAULT_MAX_NODE_VOLUME_SIZE),
    maxConcurrentPublishes: Number(flags.maxConcurrentPublishes ?? DEFAULT_MAX_CONCURRENT_PUBLISHES),
    maxQueuedPublishes: Number(flags.maxQueuedPublishes ?? DEFAULT_MAX_QUEUED_PUBLISHES),
    vaultMaxRetryAfterMs: parsed0('--vault-max-retry-after', parseDuration, flags.vaultMaxRetryAfter ?? DEFAULT_VAULT_MAX_RETRY_AFTER),
    pkcs12MaxIterations: Number(flags.pkcs12MaxIterations ?? DEFAULT_PKCS12_MAX_ITERATIONS),
    pkcs12TimeLimitMs: parsed0('--pkcs12-time-limit', parseDuration, flags.pkcs12TimeLimit ?? DEFAULT_PKCS12_TIME_LIMIT),
    writeCertAndKeyInSeparateFiles: parsed0('--write-cert-and-key-in-separate-files', parseBoolFlag, flags.writeCertAndKeyInSeparateFiles ?? false),
    constructPEMChain: parsed0('--construct-pem-chain', parseBoolFlag, flags.constructPemChain ?? true),
  };
  const azureTokenProxy = tokenProxyConfig(flags, env);
  const parsed = configSchema.safeParse(candidate);
  if (!parsed.success) throw new Error(`invalid driver configuration: ${describeZodError(parsed.error)}`);
  const versionWatch = versionWatchConfig(flags, standalone !== undefined, parsed0);
  const config = { ...(parsed.data as DriverConfig), ...(azureTokenProxy ? { azureTokenProxy } : {}), ...(versionWatch ? { versionWatch } : {}) };
  if ((config.serviceAccountJwks === undefined) !== (config.serviceAccountIssuer === undefined)) {
    throw new Error('invalid driver configuration: --service-account-jwks and --service-account-issuer go together');
  }
  if (config.maxNodeVolumeBytes < config.tmpfsSizeBytes) {
    throw new Error('invalid driver configuration: --max-node-volume-size must be at least --tmpfs-size (one full volume)');
  }
  if (config.requirePodToken && config.classSource.kind === 'standalone' && !config.serviceAccountJwks) {
    throw new Error('invalid driver configuration: --require-pod-token in standalone mode needs --service-account-jwks and --service-account-issuer');
  }
  return config;
}

/** `--version-watch[=bool]` and `--version-watch-namespace`: only with the Kubernetes API, where the watcher publishes. */
function versionWatchConfig(flags: DriverFlags, standalone: boolean, parsed0: <T, V = string>(flag: string, parse: (v: V) => T, value: V) => T): { namespace: string } | undefined {
  const on = parsed0('--version-watch', parseBoolFlag, flags.versionWatch ?? false);
  if (!on) {
    if (flags.versionWatchNamespace !== undefined) throw new Error('invalid driver configuration: --version-watch-namespace needs --version-watch');
    return undefined;
  }
  if (standalone) throw new Error('invalid driver configuration: --version-watch reads the VaultObjectVersions of the Kubernetes API; it cannot be used with --standalone');
  const namespace = flags.versionWatchNamespace ?? DEFAULT_VERSIONS_NAMESPACE;
  if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(namespace)) throw new Error(`invalid driver configuration: --version-watch-namespace ${JSON.stringify(namespace)} is not a namespace name`);
  return { namespace };
}

/**
 * The AKS token proxy: the flags, else the variables the Azure SDKs read for identity binding
 * (the AKS webhook sets them in pods that use it). Either way the node's operator chooses it.
 */
function tokenProxyConfig(flags: DriverFlags, env: NodeJS.ProcessEnv): TokenProxyConfig | undefined {
  const fromFlags = flags.azureTokenProxy !== undefined || flags.azureTokenProxyCaFile !== undefined || flags.azureTokenProxySniName !== undefined;
  const url = fromFlags ? flags.azureTokenProxy : env.AZURE_KUBERNETES_TOKEN_PROXY;
  const caFile = fromFlags ? flags.azureTokenProxyCaFile : env.AZURE_KUBERNETES_CA_FILE;
  const caData = fromFlags ? undefined : env.AZURE_KUBERNETES_CA_DATA;
  const sniName = fromFlags ? flags.azureTokenProxySniName : env.AZURE_KUBERNETES_SNI_NAME;
  const where = fromFlags ? '--azure-token-proxy' : 'AZURE_KUBERNETES_TOKEN_PROXY';
  if (!url) {
    if (caFile || caData || sniName) throw new Error(`invalid driver configuration: ${where} is not set but its CA or SNI name is`);
    return undefined;
  }
  const problem = tokenProxyUrlProblem(url);
  if (problem) throw new Error(`invalid driver configuration: ${where} ${problem}`);
  if (caFile && caData) throw new Error('invalid driver configuration: AZURE_KUBERNETES_CA_FILE and AZURE_KUBERNETES_CA_DATA are mutually exclusive');
  if (sniName !== undefined && !/^[A-Za-z0-9]([-A-Za-z0-9.]{0,251}[A-Za-z0-9])?$/.test(sniName)) throw new Error(`invalid driver configuration: ${fromFlags ? '--azure-token-proxy-sni-name' : 'AZURE_KUBERNETES_SNI_NAME'} must be a DNS name`);
  return { url, ...(caFile ? { caFile } : {}), ...(caData ? { caData } : {}), ...(sniName ? { sniName } : {}) };
}
