import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { PodvaultError, internal, invalidArgument, resourceExhausted } from '../errors/podvault-error.js';
import type { ErrorKind } from '../errors/podvault-error.js';
import { packageRoot } from '../package-info.js';
import { LruCache } from '../util/lru-cache.js';
import type { Pkcs12Answer, Pkcs12Job } from './pkcs12-protocol.js';

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

interface Pending {
  job: Pkcs12Job;
  resolve(pem: string): void;
  reject(err: PodvaultError): void;
}

/**
 * The built worker script. From `dist/` it sits beside this module. From the TypeScript sources
 * (vitest) a worker cannot load a `.ts` file, so the build's copy is used; the tests' global
 * setup (`test/support/build-worker.ts`) rebuilds it when a source is newer.
 */
function workerScript(): URL {
  const sibling = new URL('./pkcs12-worker.js', import.meta.url);
  if (existsSync(fileURLToPath(sibling))) return sibling;
  return pathToFileURL(join(packageRoot, 'dist', 'src', 'untrusted', 'pkcs12-worker.js'));
}

/**
 * Opens PKCS#12 bundles off the serving thread. One worker, started on first use and reused
 * until it has been idle for a minute, converts one bundle at a time; the time limit starts when a bundle reaches it, so a
 * slow bundle is charged for its own time only. A bundle over the limit gets its worker
 * terminated (V8 stops it mid-derivation) and the next bundle gets a fresh one. The worker does
 * not keep the process alive while idle.
 */
export class Pkcs12Converter {
  private worker: Worker | undefined;
  private running: (Pending & { timer: NodeJS.Timeout }) | undefined;
  private readonly queue: Pending[] = [];
  private nextId = 1;
  private idleTimer: NodeJS.Timeout | undefined;
  private readonly recent = new LruCache<Promise<string>>(RECENT_CONVERSIONS);

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
    const key = createHash('sha256').update(pfx).update('\0').update(password).update(`\0${maxIterations}\0${timeLimitMs}\0${orderChain}`).digest('hex');
    return this.recent.getOrCreate(key, () => {
      const converted = this.enqueue(pfx, password, orderChain);
      converted.catch(() => this.recent.delete(key));
      return converted;
    });
  }

  private enqueue(pfx: Buffer, password: string, orderChain: boolean): Promise<string> {
    if (this.queue.length >= MAX_QUEUED) return Promise.reject(resourceExhausted(`could not be converted now: ${MAX_QUEUED} PKCS#12 bundles are waiting on this node; retry`));
    return new Promise((resolve, reject) => {
      const job: Pkcs12Job = { id: this.nextId++, pfx: new Uint8Array(pfx), password, maxIterations: this.limits.maxIterations, orderChain };
      this.queue.push({ job, resolve, reject });
      this.pump();
    });
  }

  /** Ends the worker and fails what waits for it (tests; a driver process just exits). */
  async close(): Promise<void> {
    clearTimeout(this.idleTimer);
    const worker = this.worker;
    this.worker = undefined;
    const waiting = [...(this.running ? [this.running] : []), ...this.queue.splice(0)];
    this.finish();
    for (const p of waiting) p.reject(internal('could not be converted: the PKCS#12 converter was closed'));
    await worker?.terminate();
  }

  private pump(): void {
    if (this.running) return;
    const next = this.queue.shift();
    clearTimeout(this.idleTimer);
    if (!next) {
      if (this.worker) this.idleTimer = setTimeout(() => void this.close(), IDLE_MS).unref();
      return;
    }
    let worker: Worker;
    try {
      worker = this.worker ??= this.spawn();
    } catch (err) {
      next.reject(internal('could not be converted: the PKCS#12 worker did not start; see the driver log', err));
      this.pump();
      return;
    }
    const timer = setTimeout(() => this.fail(worker, invalidArgument(`is refused: the PKCS#12 bundle did not open within ${this.limits.timeLimitMs} ms (--pkcs12-time-limit)`)), this.limits.timeLimitMs);
    this.running = { ...next, timer };
    worker.ref();
    worker.postMessage(next.job, [next.job.pfx.buffer]);
  }

  private spawn(): Worker {
    const worker = new Worker(workerScript(), { resourceLimits: WORKER_LIMITS });
    worker.unref();
    worker.on('message', (answer: Pkcs12Answer) => {
      const running = this.running;
      if (worker !== this.worker || !running || answer.id !== running.job.id) return;
      this.finish();
      worker.unref();
      if (answer.ok) running.resolve(answer.pem);
      else running.reject(invalidArgument(answer.refusal ? `is refused: ${answer.refusal}` : 'is not a PKCS#12 bundle that opens with its password'));
      this.pump();
    });
    // Out of its heap: the bundle in hand is what needed it. Anything else is ours.
    worker.on('error', (err: Error & { code?: unknown }) =>
      this.fail(
        worker,
        err.code === 'ERR_WORKER_OUT_OF_MEMORY' ? invalidArgument("is refused: opening the PKCS#12 bundle needed more than the converter's memory") : internal('could not be converted: the PKCS#12 worker failed; see the driver log', err),
      ),
    );
    worker.on('exit', () => this.fail(worker, internal('could not be converted: the PKCS#12 worker stopped')));
    return worker;
  }

  private finish(): void {
    if (this.running) clearTimeout(this.running.timer);
    this.running = undefined;
  }

  /** The worker is done for: the bundle in hand fails, a fresh worker serves the next. */
  private fail(worker: Worker, err: PodvaultError): void {
    if (worker !== this.worker) return;
    this.worker = undefined;
    void worker.terminate();
    const running = this.running;
    this.finish();
    running?.reject(err);
    this.pump();
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
