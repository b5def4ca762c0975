import { readFile } from 'node:fs/promises';
import { invalidArgument } from '../errors/podvault-error.js';
import { parseDuration, parseSize } from '../config/driver-config.js';

/** The command's flags as commander hands them over (strings, before any check). */
export interface AuditFlags {
  endpoints: string;
  cacert?: string;
  cert?: string;
  key?: string;
  resources: string;
  prefix: string;
  pageSize: string;
  maxPageBytes: string;
  dialTimeout: string;
  commandTimeout: string;
  expectKeyId?: string;
  json?: boolean;
  progress?: boolean;
}

export interface TlsMaterial {
  /** PEM bytes; read once at start, never logged. */
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

/** Everything the audit needs, checked: past `parseAuditOptions` no code sees a raw flag. */
export interface AuditOptions {
  /** `http://host:port` or `https://host:port`, all of one scheme. */
  endpoints: string[];
  tls?: TlsMaterial;
  /** Resource paths below the prefix: `secrets`, `configmaps`, `<group>/<resource>` for custom resources. */
  resources: string[];
  /** kube-apiserver's `--etcd-prefix`, without a trailing slash. */
  prefix: string;
  pageSize: number;
  maxPageBytes: number;
  dialTimeoutMs: number;
  commandTimeoutMs: number;
  expectKeyId?: string;
  json: boolean;
  progress: boolean;
}

export const DEFAULT_ENDPOINT = '127.0.0.1:2379';
export const DEFAULT_PAGE_SIZE = 500;
export const MAX_PAGE_SIZE = 10_000;
export const DEFAULT_MAX_PAGE_BYTES = '16Mi';

const RESOURCE_SEGMENT = /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/;
const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/;

/** Checks the flags and reads the TLS files (errors name the flag and file, never file contents). */
export async function parseAuditOptions(flags: AuditFlags, isTty: boolean): Promise<AuditOptions> {
  if ((flags.cert === undefined) !== (flags.key === undefined)) throw invalidArgument('--cert and --key go together: give both or neither');
  const wantsTls = flags.cacert !== undefined || flags.cert !== undefined;
  const endpoints = flags.endpoints.split(',').map((e) => e.trim()).filter(Boolean).map((e) => normaliseEndpoint(e, wantsTls));
  if (endpoints.length === 0) throw invalidArgument('--endpoints: give at least one etcd endpoint (host:port or https://host:port)');
  const secure = endpoints[0]?.startsWith('https://') ?? false;
  if (endpoints.some((e) => e.startsWith('https://') !== secure)) throw invalidArgument('--endpoints: mix of http:// and https:// endpoints');
  if (!secure && wantsTls) throw invalidArgument('--cacert/--cert/--key need https:// endpoints');

  const resources = [...new Set(flags.resources.split(',').map((r) => r.trim()).filter(Boolean))];
  if (resources.length === 0) throw invalidArgument('--resources: name at least one resource (secrets, configmaps, …)');
  for (const resource of resources) {
    const segments = resource.split('/');
    if (segments.length > 2 || !segments.every((s) => RESOURCE_SEGMENT.test(s))) {
      throw invalidArgument(`--resources: ${JSON.stringify(resource)} is not a resource name (lower-case, like secrets or example.com/widgets)`);
    }
  }
  const prefix = flags.prefix.replace(/\/+$/, '');
  if (!/^\/[A-Za-z0-9._/-]*$/.test(prefix) || prefix.length > 256) throw invalidArgument('--prefix: an etcd key prefix like /registry (kube-apiserver\'s --etcd-prefix)');

  const pageSize = Number(flags.pageSize);
  if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > MAX_PAGE_SIZE) throw invalidArgument(`--page-size: a whole number from 1 to ${MAX_PAGE_SIZE}`);
  const maxPageBytes = flagValue('--max-page-bytes', () => parseSize(flags.maxPageBytes));
  if (maxPageBytes < 1024 * 1024 || maxPageBytes > 1024 ** 3) throw invalidArgument('--max-page-bytes: from 1Mi to 1Gi');
  const dialTimeoutMs = flagValue('--dial-timeout', () => parseDuration(flags.dialTimeout));
  const commandTimeoutMs = flagValue('--command-timeout', () => parseDuration(flags.commandTimeout));
  if (dialTimeoutMs < 1 || commandTimeoutMs < 1) throw invalidArgument('--dial-timeout and --command-timeout must be above zero');

  const expectKeyId = flags.expectKeyId;
  if (expectKeyId !== undefined && (expectKeyId.length === 0 || Buffer.byteLength(expectKeyId) > 1024)) throw invalidArgument('--expect-key-id: a KMS v2 key id of 1 to 1024 bytes');

  return {
    endpoints,
    tls: secure ? await readTls(flags) : undefined,
    resources,
    prefix,
    pageSize,
    maxPageBytes,
    dialTimeoutMs,
    commandTimeoutMs,
    expectKeyId,
    json: flags.json === true,
    progress: flags.progress === true || isTty,
  };
}

/** etcdctl's rule: a bare host:port is https when TLS files are given, http otherwise. */
function normaliseEndpoint(endpoint: string, wantsTls: boolean): string {
  const match = /^(https?):\/\/(.*?)\/?$/.exec(endpoint);
  const hostPort = match ? (match[2] ?? '') : endpoint;
  if (!HOST_PORT.test(hostPort) || Number(hostPort.slice(hostPort.lastIndexOf(':') + 1)) > 65535) {
    throw invalidArgument(`--endpoints: ${JSON.stringify(endpoint.slice(0, 200))} is not host:port or http(s)://host:port`);
  }
  return `${match ? match[1] : wantsTls ? 'https' : 'http'}://${hostPort}`;
}

function flagValue<T>(flag: string, parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    throw invalidArgument(`${flag}: ${err instanceof Error ? err.message : 'bad value'}`);
  }
}

async function readTls(flags: AuditFlags): Promise<TlsMaterial> {
  const read = async (flag: string, path: string | undefined): Promise<Buffer | undefined> => {
    if (path === undefined) return undefined;
    let bytes: Buffer;
    try {
      bytes = await readFile(path);
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      throw invalidArgument(`${flag}: cannot read ${JSON.stringify(path)} (${typeof code === 'string' ? code : 'error'})`);
    }
    if (!bytes.includes('-----BEGIN ')) throw invalidArgument(`${flag}: ${JSON.stringify(path)} is not a PEM file`);
    return bytes;
  };
  return { ca: await read('--cacert', flags.cacert), cert: await read('--cert', flags.cert), key: await read('--key', flags.key) };
}
