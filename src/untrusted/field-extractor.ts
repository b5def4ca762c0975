import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { internal, invalidArgument, resourceExhausted, unavailable } from '../errors/podvault-error.js';
import type { PodvaultError } from '../errors/podvault-error.js';
import { packageRoot } from '../package-info.js';
import type { FieldAnswer, FieldJob } from './field-extraction-protocol.js';
import type { FieldResult } from './secret-fields.js';

/** A value not parsed and searched within this long is refused and its worker replaced. */
export const FIELD_EXTRACTION_TIME_LIMIT_MS = 5000;
/** Values waiting for the worker; past this a publish is told to retry (RESOURCE_EXHAUSTED). */
const MAX_QUEUED = 64;
/** An idle worker is ended after this long. */
const IDLE_MS = 60_000;
/** A 128 KiB document and its parse tree fit easily; a value that needs more is refused. */
const WORKER_LIMITS = { maxOldGenerationSizeMb: 64, maxYoungGenerationSizeMb: 4, stackSizeMb: 4 };

interface Pending {
  job: FieldJob;
  resolve(fields: FieldResult[]): void;
  reject(err: PodvaultError): void;
}

/** The built worker script, as for the PKCS#12 converter (see `pkcs12-converter.ts`). */
function workerScript(): URL {
  const sibling = new URL('./field-extraction-worker.js', import.meta.url);
  if (existsSync(fileURLToPath(sibling))) return sibling;
  return pathToFileURL(join(packageRoot, 'dist', 'src', 'untrusted', 'field-extraction-worker.js'));
}

/**
 * Parses JSON/YAML secrets and evaluates JMESPath on them off the serving thread: one worker,
 * started on first use, ended after a minute idle, one value at a time. A value over the time
 * limit (or the worker's memory) gets its worker terminated; the next value gets a fresh one.
 * Rejections are podvault's words only (`is refused: …`), never the value's.
 */
export class FieldExtractor {
  private worker: Worker | undefined;
  private running: (Pending & { timer: NodeJS.Timeout }) | undefined;
  private readonly queue: Pending[] = [];
  private nextId = 1;
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(private readonly timeLimitMs = FIELD_EXTRACTION_TIME_LIMIT_MS) {}

  /**
   * One result per path; rejects with INVALID_ARGUMENT when the value is neither JSON nor YAML.
   * When `signal` aborts (the publish's deadline or cancellation) the value leaves the queue, or,
   * if it is being parsed, its worker is replaced: a publish that gave up holds the node's one
   * worker no longer (an expression nesting three filters over one 2,000-element array runs for
   * minutes; each such value would otherwise hold it for the whole time limit).
   */
  extract(text: string, paths: readonly string[], maxBytes: number, signal?: AbortSignal): Promise<FieldResult[]> {
    if (signal?.aborted) return Promise.reject(abandoned());
    if (this.queue.length >= MAX_QUEUED) return Promise.reject(resourceExhausted(`could not be parsed now: ${MAX_QUEUED} secrets are waiting for field extraction on this node; retry`));
    return new Promise((resolve, reject) => {
      const id = this.nextId++;
      const onAbort = (): void => this.abandon(id);
      signal?.addEventListener('abort', onAbort, { once: true });
      const detach = (): void => signal?.removeEventListener('abort', onAbort);
      this.queue.push({
        job: { id, text, paths: [...paths], maxBytes },
        resolve: (fields) => (detach(), resolve(fields)),
        reject: (err) => (detach(), reject(err)),
      });
      this.pump();
    });
  }

  /** The value `id`'s publish gave up: drop it from the queue, or stop parsing it. */
  private abandon(id: number): void {
    const queued = this.queue.findIndex((p) => p.job.id === id);
    if (queued >= 0) {
      this.queue.splice(queued, 1)[0]?.reject(abandoned());
      return;
    }
    if (this.running?.job.id === id && this.worker) this.fail(this.worker, abandoned());
  }

  /** Ends the worker and fails what waits for it (tests; a driver process just exits). */
  async close(): Promise<void> {
    clearTimeout(this.idleTimer);
    const worker = this.worker;
    this.worker = undefined;
    const waiting = [...(this.running ? [this.running] : []), ...this.queue.splice(0)];
    this.finish();
    for (const p of waiting) p.reject(internal('could not be parsed: the field extractor was closed'));
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
      next.reject(internal('could not be parsed: the field-extraction worker did not start; see the driver log', err));
      this.pump();
      return;
    }
    const timer = setTimeout(() => this.fail(worker, invalidArgument(`is refused: parsing it and evaluating jmesPath took more than ${this.timeLimitMs} ms`)), this.timeLimitMs);
    this.running = { ...next, timer };
    worker.ref();
    worker.postMessage(next.job);
  }

  private spawn(): Worker {
    const worker = new Worker(workerScript(), { resourceLimits: WORKER_LIMITS });
    worker.unref();
    worker.on('message', (answer: FieldAnswer) => {
      const running = this.running;
      if (worker !== this.worker || !running || answer.id !== running.job.id) return;
      this.finish();
      worker.unref();
      if (answer.fields) running.resolve(answer.fields);
      else running.reject(invalidArgument('is neither JSON nor YAML (jmesPath needs one of them)'));
      this.pump();
    });
    worker.on('error', (err: Error & { code?: unknown }) =>
      this.fail(worker, err.code === 'ERR_WORKER_OUT_OF_MEMORY' ? invalidArgument('is refused: parsing it needed more than the field extractor\'s memory') : internal('could not be parsed: the field-extraction worker failed; see the driver log', err)),
    );
    worker.on('exit', () => this.fail(worker, internal('could not be parsed: the field-extraction worker stopped')));
    return worker;
  }

  private finish(): void {
    if (this.running) clearTimeout(this.running.timer);
    this.running = undefined;
  }

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

function abandoned(): PodvaultError {
  return unavailable('was not parsed: the publish ended (its deadline or the caller) before field extraction finished; will retry');
}

/** The node's extractor. */
export const fieldExtractor = new FieldExtractor();
