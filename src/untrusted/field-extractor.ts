import { invalidArgument, unavailable } from '../errors/podvault-error.js';
import type { PodvaultError } from '../errors/podvault-error.js';
import type { FieldAnswer, FieldJob } from './field-extraction-protocol.js';
import type { FieldResult } from './secret-fields.js';
import { WorkerQueue } from './worker-queue.js';

/** A value not parsed and searched within this long is refused and its worker replaced. */
export const FIELD_EXTRACTION_TIME_LIMIT_MS = 5000;
/** Values waiting for the worker; past this a publish is told to retry (RESOURCE_EXHAUSTED). */
const MAX_QUEUED = 64;
/** An idle worker is ended after this long. */
const IDLE_MS = 60_000;
/** A 128 KiB document and its parse tree fit easily; a value that needs more is refused. */
const WORKER_LIMITS = { maxOldGenerationSizeMb: 64, maxYoungGenerationSizeMb: 4, stackSizeMb: 4 };

/**
 * Parses JSON/YAML secrets and evaluates JMESPath on them off the serving thread, on one worker
 * (see WorkerQueue): a value over the time limit or the worker's memory gets the worker replaced.
 * Rejections are podvault's words only (`is refused: …`), never the value's.
 */
export class FieldExtractor {
  private readonly worker = new WorkerQueue<FieldJob, FieldAnswer, FieldResult[]>({
    script: 'field-extraction-worker.js',
    limits: WORKER_LIMITS,
    maxQueued: MAX_QUEUED,
    idleMs: IDLE_MS,
    messages: {
      busy: `could not be parsed now: ${MAX_QUEUED} secrets are waiting for field extraction on this node; retry`,
      outOfMemory: "is refused: parsing it needed more than the field extractor's memory",
      failedVerb: 'could not be parsed',
      worker: 'field-extraction worker',
      owner: 'field extractor',
    },
    settle: (answer) => (answer.fields ? { value: answer.fields } : { error: invalidArgument('is neither JSON nor YAML (jmesPath needs one of them)') }),
  });

  constructor(private readonly timeLimitMs = FIELD_EXTRACTION_TIME_LIMIT_MS) {}

  /**
   * One result per path; rejects with INVALID_ARGUMENT when the value is neither JSON nor YAML.
   * When `signal` aborts (the publish's deadline or cancellation) the value leaves the queue, or,
   * if it is being parsed, its worker is replaced: a publish that gave up holds the node's one
   * worker no longer (an expression nesting three filters over one 2,000-element array runs for
   * minutes; each such value would otherwise hold it for the whole time limit).
   */
  extract(text: string, paths: readonly string[], maxBytes: number, signal?: AbortSignal): Promise<FieldResult[]> {
    return this.worker.run(
      { text, paths: [...paths], maxBytes },
      { timeLimitMs: this.timeLimitMs, timeoutMessage: `is refused: parsing it and evaluating jmesPath took more than ${this.timeLimitMs} ms` },
      [],
      signal && { signal, error: abandoned },
    );
  }

  /** Ends the worker and fails what waits for it (tests; a driver process just exits). */
  close(): Promise<void> {
    return this.worker.close();
  }
}

function abandoned(): PodvaultError {
  return unavailable('was not parsed: the publish ended (its deadline or the caller) before field extraction finished; will retry');
}

/** The node's extractor. */
export const fieldExtractor = new FieldExtractor();
