import { invalidArgument } from '../errors/podvault-error.js';
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

  /** One result per path; rejects with INVALID_ARGUMENT when the value is neither JSON nor YAML. */
  extract(text: string, paths: readonly string[], maxBytes: number): Promise<FieldResult[]> {
    return this.worker.run(
      { text, paths: [...paths], maxBytes },
      { timeLimitMs: this.timeLimitMs, timeoutMessage: `is refused: parsing it and evaluating jmesPath took more than ${this.timeLimitMs} ms` },
    );
  }

  /** Ends the worker and fails what waits for it (tests; a driver process just exits). */
  close(): Promise<void> {
    return this.worker.close();
  }
}

/** The node's extractor. */
export const fieldExtractor = new FieldExtractor();
