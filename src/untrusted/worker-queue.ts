import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { ResourceLimits, Transferable } from 'node:worker_threads';
import { internal, invalidArgument, resourceExhausted } from '../errors/podvault-error.js';
import type { PodvaultError } from '../errors/podvault-error.js';
import { packageRoot } from '../package-info.js';

/** What the errors of one kind of work say; each is completed by the subject the caller names. */
export interface WorkerQueueMessages {
  /** The queue is full: `could not be converted now: 64 PKCS#12 bundles are waiting…` */
  busy: string;
  /** The worker ran out of its heap on the job in hand (the input is at fault). */
  outOfMemory: string;
  /** Prefix of the internal errors: `could not be converted`. */
  failedVerb: string;
  /** The worker's name in the internal errors: `PKCS#12 worker`. */
  worker: string;
  /** The owner's name when it is closed: `PKCS#12 converter`. */
  owner: string;
}

export interface WorkerQueueOptions<Answer, Result> {
  /** The worker's built file name in `dist/src/untrusted/`, e.g. `pkcs12-worker.js`. */
  script: string;
  limits: ResourceLimits;
  maxQueued: number;
  /** An idle worker is ended after this long. */
  idleMs: number;
  messages: WorkerQueueMessages;
  /** The caller's result, or the refusal, of the worker's answer. */
  settle(answer: Answer): { value: Result } | { error: PodvaultError };
}

interface Pending<Job, Result> {
  job: Job;
  transfer: readonly Transferable[];
  timeLimitMs: number;
  timeoutMessage: string;
  resolve(result: Result): void;
  reject(err: PodvaultError): void;
}

/**
 * The built worker script. From `dist/` it sits beside this module. From the TypeScript sources
 * (vitest) a worker cannot load a `.ts` file, so the build's copy is used; the tests' global
 * setup (`test/support/build-worker.ts`) rebuilds it when a source is newer.
 */
function workerScript(script: string): URL {
  const sibling = new URL(`./${script}`, import.meta.url);
  if (existsSync(fileURLToPath(sibling))) return sibling;
  return pathToFileURL(join(packageRoot, 'dist', 'src', 'untrusted', script));
}

/**
 * Untrusted bytes handled off the serving thread: one worker, started on first use and reused
 * until it has been idle for `idleMs`, does one job at a time; a job's time limit starts when it
 * reaches the worker, so a slow input is charged for its own time only. A job over its limit, or
 * over the worker's heap, gets its worker terminated (V8 stops it mid-work) and the next job gets a
 * fresh one. The worker does not keep the process alive while idle. Every rejection is a
 * PodvaultError in podvault's words, never the input's.
 */
export class WorkerQueue<Job extends { id: number }, Answer extends { id: number }, Result> {
  private worker: Worker | undefined;
  private running: (Pending<Job, Result> & { timer: NodeJS.Timeout }) | undefined;
  private readonly queue: Pending<Job, Result>[] = [];
  private nextId = 1;
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: WorkerQueueOptions<Answer, Result>) {}

  /**
   * Queue a job (its id is assigned here); past `maxQueued` waiting, RESOURCE_EXHAUSTED. When
   * `cancel.signal` aborts (the caller's deadline or cancellation) the job leaves the queue, or, if
   * it is running, its worker is replaced: a caller that gave up holds the node's one worker no
   * longer. Only for jobs one caller owns (a shared result must not end with one of its callers).
   */
  run(
    job: Omit<Job, 'id'>,
    limit: { timeLimitMs: number; timeoutMessage: string },
    transfer: readonly Transferable[] = [],
    cancel?: { signal: AbortSignal; error: () => PodvaultError },
  ): Promise<Result> {
    if (cancel?.signal.aborted) return Promise.reject(cancel.error());
    if (this.queue.length >= this.options.maxQueued) return Promise.reject(resourceExhausted(this.options.messages.busy));
    return new Promise((resolve, reject) => {
      const id = this.nextId++;
      const onAbort = (): void => {
        if (cancel) this.abandon(id, cancel.error);
      };
      cancel?.signal.addEventListener('abort', onAbort, { once: true });
      const detach = (): void => cancel?.signal.removeEventListener('abort', onAbort);
      this.queue.push({
        job: { ...job, id } as Job,
        transfer,
        ...limit,
        resolve: (result) => (detach(), resolve(result)),
        reject: (err) => (detach(), reject(err)),
      });
      this.pump();
    });
  }

  /** Job `id`'s caller gave up: drop it from the queue, or stop the worker running it. */
  private abandon(id: number, error: () => PodvaultError): void {
    const queued = this.queue.findIndex((p) => p.job.id === id);
    if (queued >= 0) {
      this.queue.splice(queued, 1)[0]?.reject(error());
      return;
    }
    if (this.running?.job.id === id && this.worker) this.fail(this.worker, error());
  }

  /** Ends the worker and fails what waits for it (tests; a driver process just exits). */
  async close(): Promise<void> {
    clearTimeout(this.idleTimer);
    const worker = this.worker;
    this.worker = undefined;
    const waiting = [...(this.running ? [this.running] : []), ...this.queue.splice(0)];
    this.finish();
    const { failedVerb, owner } = this.options.messages;
    for (const p of waiting) p.reject(internal(`${failedVerb}: the ${owner} was closed`));
    await worker?.terminate();
  }

  private pump(): void {
    if (this.running) return;
    const next = this.queue.shift();
    clearTimeout(this.idleTimer);
    if (!next) {
      if (this.worker) this.idleTimer = setTimeout(() => void this.close(), this.options.idleMs).unref();
      return;
    }
    let worker: Worker;
    try {
      worker = this.worker ??= this.spawn();
    } catch (err) {
      next.reject(internal(`${this.options.messages.failedVerb}: the ${this.options.messages.worker} did not start; see the driver log`, err));
      this.pump();
      return;
    }
    const timer = setTimeout(() => this.fail(worker, invalidArgument(next.timeoutMessage)), next.timeLimitMs);
    this.running = { ...next, timer };
    worker.ref();
    worker.postMessage(next.job, next.transfer);
  }

  private spawn(): Worker {
    const { messages } = this.options;
    const worker = new Worker(workerScript(this.options.script), { resourceLimits: this.options.limits });
    worker.unref();
    worker.on('message', (answer: Answer) => {
      const running = this.running;
      if (worker !== this.worker || !running || answer.id !== running.job.id) return;
      this.finish();
      worker.unref();
      const settled = this.options.settle(answer);
      if ('value' in settled) running.resolve(settled.value);
      else running.reject(settled.error);
      this.pump();
    });
    // Out of its heap: the input in hand is what needed it. Anything else is ours.
    worker.on('error', (err: Error & { code?: unknown }) =>
      this.fail(worker, err.code === 'ERR_WORKER_OUT_OF_MEMORY' ? invalidArgument(messages.outOfMemory) : internal(`${messages.failedVerb}: the ${messages.worker} failed; see the driver log`, err)),
    );
    worker.on('exit', () => this.fail(worker, internal(`${messages.failedVerb}: the ${messages.worker} stopped`)));
    return worker;
  }

  private finish(): void {
    if (this.running) clearTimeout(this.running.timer);
    this.running = undefined;
  }

  /** The worker is done for: the job in hand fails, a fresh worker serves the next. */
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
