import { parentPort } from 'node:worker_threads';
import type { Pkcs12Answer, Pkcs12Job } from './pkcs12-protocol.js';
import { loadConverter, Pkcs12Refusal, pkcs12ToPem } from './pkcs12-to-pem.js';

/**
 * The worker thread that opens tenant- and vault-supplied PKCS#12 bundles, one at a time, away
 * from the thread that serves the kubelet. Its parent (`pkcs12-converter.ts`) bounds the input,
 * the time and the memory; this side bounds every key derivation's iteration count. Only our own
 * refusal texts go back: node-forge's messages may quote the bytes it choked on.
 */
loadConverter();
parentPort?.on('message', (job: Pkcs12Job) => {
  let answer: Pkcs12Answer;
  try {
    answer = { id: job.id, ok: true, pem: pkcs12ToPem(Buffer.from(job.pfx.buffer, job.pfx.byteOffset, job.pfx.byteLength), job.password, job.maxIterations, job.orderChain) };
  } catch (err) {
    answer = err instanceof Pkcs12Refusal ? { id: job.id, ok: false, refusal: err.message } : { id: job.id, ok: false };
  }
  parentPort?.postMessage(answer);
});
