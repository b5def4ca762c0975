/**
 * An AbortSignal that aborts when any parent aborts or after `timeoutMs`, and a `dispose()` that
 * detaches it from its parents and clears its timer. Unlike `AbortSignal.any` plus
 * `AbortSignal.timeout`, nothing outlives the operation: a pending timeout would keep the whole
 * request (clients, buffers) reachable until it fires.
 */
export function linkedSignal(parents: readonly AbortSignal[], timeoutMs?: number, timeoutReason?: () => unknown): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const abort = (reason: unknown): void => {
    if (!controller.signal.aborted) controller.abort(reason);
  };
  const listeners = parents.map((parent) => {
    const listener = (): void => abort(parent.reason);
    if (parent.aborted) abort(parent.reason);
    else parent.addEventListener('abort', listener, { once: true });
    return [parent, listener] as const;
  });
  const timer = timeoutMs === undefined ? undefined : setTimeout(() => abort(timeoutReason ? timeoutReason() : new DOMException('timed out', 'TimeoutError')), timeoutMs);
  return {
    signal: controller.signal,
    dispose: () => {
      if (timer) clearTimeout(timer);
      for (const [parent, listener] of listeners) parent.removeEventListener('abort', listener);
    },
  };
}
