import { parentPort } from 'node:worker_threads';
import type { FieldAnswer, FieldJob } from './field-extraction-protocol.js';
import { extractSecretFields } from './secret-fields.js';

/**
 * The worker thread that parses vault-supplied JSON/YAML secrets and evaluates the class's
 * JMESPath expressions on them, one value at a time, away from the thread serving the kubelet.
 * Its parent (`field-extractor.ts`) bounds the time and the memory.
 */
parentPort?.on('message', (job: FieldJob) => {
  const fields = extractSecretFields(job.text, job.paths, job.maxBytes);
  const answer: FieldAnswer = fields ? { id: job.id, fields } : { id: job.id };
  parentPort?.postMessage(answer);
});
