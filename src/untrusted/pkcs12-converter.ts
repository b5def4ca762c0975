import { createHash } from 'node:crypto';
import { PodvaultError, internal, invalidArgument } from '../errors/podvault-error.js';
import type { ErrorKind } from '../errors/podvault-error.js';
import { LruCache } from '../util/lru-cache.js';
import type { Pkcs12Answer, Pkcs12Job } from './pkcs12-protocol.js';
import { WorkerQueue } from './worker-queue.js';

export interface Pkcs12Limits {
  /** Highest iteration count of any key derivation (MAC, PBE, PBKDF2) a bundle may ask for. */
  maxIterations: number;
  /** A bundle not converted within this long is refused and its worker replaced (ms). */
  timeLimitMs: number;
}

/** OpenSSL 3 writes 2048 iterations, Windows 2000, Java 10000; 2.5 M stalled a node for 6 s. */
export const DEFAULT_PKCS12_MAX_ITERATIONS = 100_000;
export const DEFAULT_PKCS12_TIME_LIMIT = '5s';
const DEFAULT_PKCS12_TIME_LIMIT_MS = 5000;
/** Key Vault stores at most 25 KB per secret; a bigger bundle is not one Key Vault made. */
export const MAX_PKCS12_BYTES = 256 * 1024;
/** Bundles waiting for the worker; past this a publish is told to retry (RESOURCE_EXHAUSTED). */
const MAX_QUEUED = 64;
/**
 * An idle worker is ended after this long: alive it holds ~14 MiB of resident memory (measured by
 * bench/pkcs12-memory.ts), and most nodes open a bundle only at a publish or a rotation.
 */
const IDLE_MS = 60_000;
/** node-forge and a bundle's working copies fit easily; a bundle that needs more is refused. */
const WORKER_LIMITS = { maxOldGenerationSizeMb: 48, maxYoungGenerationSizeMb: 2, stackSizeMb: 4 };
/**
 * Conversions shared and kept: the aliases of one object, concurrent publishes of it and a type-2
 * identity's every publish would each open the same bundle again (the vault fetch is shared, the
 * conversion was not). A few KiB each; failures are not kept.
 */
const RECENT_CONVERSIONS = 32;

/**
 * Opens PKCS#12 bundles off the serving thread, on one worker (see WorkerQueue): a bundle over
 * `--pkcs12-time-limit` or the worker's heap gets the worker replaced. Recent conversions are kept.
 */
export class Pkcs12Converter {
  private readonly recent = new LruCache<Promise<string>>(RECENT_CONVERSIONS);
  private readonly worker = new WorkerQueue<Pkcs12Job, Pkcs12Answer, string>({
    script: 'pkcs12-worker.js',
    limits: WORKER_LIMITS,
    maxQueued: MAX_QUEUED,
    idleMs: IDLE_MS,
    messages: {
      busy: `could not be converted now: ${MAX_QUEUED} PKCS#12 bundles are waiting on this node; retry`,
      outOfMemory: "is refused: opening the PKCS#12 bundle needed more than the converter's memory",
      failedVerb: 'could not be converted',
      worker: 'PKCS#12 worker',
      owner: 'PKCS#12 converter',
    },
    settle: (answer) =>
      answer.ok ? { value: answer.pem } : { error: invalidArgument(answer.refusal ? `is refused: ${answer.refusal}` : 'is not a PKCS#12 bundle that opens with its password') },
  });

  constructor(private limits: Pkcs12Limits) {}

  configure(limits: Pkcs12Limits): void {
    this.limits = limits;
  }

  /**
   * PEM of the bundle (private key, then certificates leaf → root, or in the bundle's order with
   * `orderChain: false`); rejects with a PodvaultError.
   */
  convert(pfx: Buffer, password: string, options: { orderChain?: boolean } = {}): Promise<string> {
    const orderChain = options.orderChain ?? true;
    if (pfx.length > MAX_PKCS12_BYTES) return Promise.reject(invalidArgument(`is refused: the PKCS#12 bundle is ${pfx.length} bytes, more than the ${MAX_PKCS12_BYTES} this node opens`));
    const { maxIterations, timeLimitMs } = this.limits;
    const key = createHash('sha256').update(`${pfx.length}\0`).update(pfx).update('\0').update(password).update(`\0${maxIterations}\0${timeLimitMs}\0${orderChain}`).digest('hex');
    return this.recent.getOrCreate(key, () => {
      const bytes = new Uint8Array(pfx);
      const converted = this.worker.run(
        { pfx: bytes, password, maxIterations, orderChain },
        { timeLimitMs, timeoutMessage: `is refused: the PKCS#12 bundle did not open within ${timeLimitMs} ms (--pkcs12-time-limit)` },
        [bytes.buffer],
      );
      converted.catch(() => this.recent.delete(key));
      return converted;
    });
  }

  /** Ends the worker and fails what waits for it (tests; a driver process just exits). */
  close(): Promise<void> {
    return this.worker.close();
  }
}

/** The node's converter; `startDriver` applies the flags. */
export const pkcs12Converter = new Pkcs12Converter({ maxIterations: DEFAULT_PKCS12_MAX_ITERATIONS, timeLimitMs: DEFAULT_PKCS12_TIME_LIMIT_MS });

/**
 * A caller's error for a bundle the converter refused, as `<subject> <reason>`: a refused bundle
 * takes the caller's kind (the Secret or vault object is at fault); a busy node stays
 * RESOURCE_EXHAUSTED, which the kubelet retries.
 */
export function pkcs12Failure(err: unknown, subject: string, kind: ErrorKind): PodvaultError {
  if (!(err instanceof PodvaultError)) return internal(`${subject} could not be converted; see the driver log`, err);
  const keep = err.kind === 'resource-exhausted' || err.kind === 'internal';
  return new PodvaultError(keep ? err.kind : kind, `${subject} ${err.message}`, { cause: err.cause });
}
