import { rootCertificates } from 'node:tls';
import {
  Etcd3,
  EtcdError,
  EtcdPermissionDeniedError,
  GRPCDeadlineExceededError,
  GRPCResourceExhastedError,
  GRPCUnauthenticatedError,
  GRPCUnavailableError,
} from 'etcd3';
import type { IOptions, IKeyValue } from 'etcd3';
import { handleWhen, noop, retry } from 'cockatiel';
import type { PodvaultError } from '../errors/podvault-error.js';
import { deadlineExceeded, failedPrecondition, internal, permissionDenied, resourceExhausted, unavailable } from '../errors/podvault-error.js';
import type { AuditOptions } from './audit-options.js';

/** One page of a range read: keys and values exactly as etcd holds them. */
export type EtcdPage = readonly Pick<IKeyValue, 'key' | 'value'>[];

/**
 * Reads etcd for the audit: one client, every page of every prefix at one revision (a consistent
 * snapshot even while the cluster writes), at most `pageSize` keys and `maxPageBytes` of answer a
 * page. A page over the byte bound (grpc-js refuses to receive it) is asked again at half the
 * keys, down to one; only a single value over the bound fails the audit.
 */
export class EtcdReader {
  private readonly client: Etcd3;
  private revision: string | undefined;

  constructor(private readonly options: AuditOptions) {
    const { tls } = options;
    const config: IOptions = {
      hosts: options.endpoints,
      dialTimeout: options.dialTimeoutMs,
      defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + options.commandTimeoutMs }),
      grpcOptions: { 'grpc.max_receive_message_length': options.maxPageBytes },
      // etcd3's defaults retry every "recoverable" error three times and open a per-host circuit
      // breaker after three failures; RESOURCE_EXHAUSTED (a page over the byte bound) counts as
      // one, so the first oversized page would block the smaller retries. A one-shot audit needs
      // neither: more attempts (each on an endpoint etcd3 picks at random) only when a host is
      // unreachable, and a page too large is ours to shrink.
      faultHandling: {
        host: () => noop,
        global: retry(handleWhen((err) => err instanceof GRPCUnavailableError), { maxAttempts: options.endpoints.length + 1 }),
      },
    };
    if (tls) {
      config.credentials = {
        // Without --cacert, the system's roots (as etcdctl does).
        rootCertificate: tls.ca ?? Buffer.from(rootCertificates.join('\n')),
        ...(tls.key ? { privateKey: tls.key } : {}),
        ...(tls.cert ? { certChain: tls.cert } : {}),
      };
    }
    this.client = new Etcd3(config);
  }

  /** The revision every page was read at (known after the first page). */
  get readRevision(): string | undefined {
    return this.revision;
  }

  /** Every key below `prefix` (which ends with `/`), page by page, in key order. */
  async *pages(prefix: Buffer): AsyncGenerator<EtcdPage> {
    const rangeEnd = prefixEnd(prefix);
    let key = prefix;
    let limit = this.options.pageSize;
    for (;;) {
      let response;
      try {
        response = await this.client.kv.range({ key, range_end: rangeEnd, limit, revision: this.revision ?? 0 });
      } catch (err) {
        if (err instanceof GRPCResourceExhastedError && limit > 1) {
          limit = Math.ceil(limit / 2);
          continue;
        }
        throw this.explain(err);
      }
      this.revision ??= response.header.revision;
      const last = response.kvs.at(-1);
      if (response.kvs.length > 0) yield response.kvs;
      if (!response.more || !last) return;
      key = Buffer.concat([last.key, Buffer.from([0])]);
    }
  }

  close(): void {
    this.client.close();
  }

  /**
   * podvault's words for what went wrong. etcd3's and grpc-js's messages are not passed on
   * (they are long and name internals); a few well-known causes are recognised in them.
   */
  private explain(err: unknown): PodvaultError {
    const where = `etcd at ${this.options.endpoints.join(',')}`;
    const message = err instanceof Error ? err.message : '';
    if (err instanceof GRPCResourceExhastedError) {
      // grpc-js refusing an answer over its receive limit, or etcd itself shedding load.
      if (/larger than max/i.test(message)) return resourceExhausted(`${where}: one value is larger than --max-page-bytes (${this.options.maxPageBytes} bytes); raise it`, err);
      return resourceExhausted(`${where} is overloaded (RESOURCE_EXHAUSTED); run the audit again later or with a smaller --page-size`, err);
    }
    if (err instanceof GRPCUnavailableError) return unavailable(`cannot reach ${where}: ${connectionProblem(message)}`, err);
    if (err instanceof GRPCDeadlineExceededError) return deadlineExceeded(`${where} did not answer within --command-timeout (${this.options.commandTimeoutMs} ms)`, err);
    if (err instanceof GRPCUnauthenticatedError || err instanceof EtcdPermissionDeniedError) {
      return permissionDenied(`${where} refused the read: etcd authentication is on; use a client certificate of a user with read access (--cert, --key)`, err);
    }
    if (err instanceof EtcdError && message.includes('compacted')) {
      return failedPrecondition(`${where} compacted revision ${this.revision ?? '?'} during the audit; run it again`, err);
    }
    return internal(`${where}: the read failed (${err instanceof Error ? err.name : 'error'})`, err);
  }
}

/** The end of the range of keys that start with `prefix`: the prefix with its last byte plus one. */
export function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]! += 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

/** Causes of an UNAVAILABLE that an operator can act on, told in a few words. */
function connectionProblem(message: string): string {
  const known: ReadonlyArray<readonly [RegExp, string]> = [
    [/ECONNREFUSED/, 'connection refused (is etcd listening there?)'],
    [/ENOTFOUND|EAI_AGAIN/, 'the host name does not resolve'],
    [/ETIMEDOUT|EHOSTUNREACH|ENETUNREACH/, 'no route or no answer from the host'],
    [/self[- ]signed|unable to (verify|get local issuer)|UNABLE_TO_VERIFY|certificate verify failed/i, 'its TLS certificate is not signed by --cacert'],
    [/Hostname\/IP does not match|ERR_TLS_CERT_ALTNAME_INVALID/, 'its TLS certificate does not name this endpoint'],
    [/certificate (has )?expired|CERT_HAS_EXPIRED/i, 'its TLS certificate has expired'],
    [/certificate required|bad certificate|unknown ca|alert/i, 'it refused our client certificate (give --cert and --key of a certificate its CA trusts)'],
    [/wrong version number|packet length too long|http2|Protocol error|ECONNRESET|socket hang up/i, 'the connection broke off (http:// to a TLS port, or https:// to a plain one?)'],
  ];
  for (const [pattern, text] of known) if (pattern.test(message)) return text;
  return 'no connection could be established';
}
