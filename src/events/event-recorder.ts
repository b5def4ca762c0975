import type { Logger } from '../log.js';
import type { PodInfo } from '../identity/pod-info.js';

export type EventType = 'Normal' | 'Warning';

/**
 * Kubernetes Events on a pod: what an operator sees with `kubectl describe pod`. Messages name the
 * class, object and status; they never carry a value or a token (they come from PodvaultError
 * messages, which never do).
 */
export interface EventRecorder {
  record(pod: PodInfo, type: EventType, reason: string, message: string): void;
}

/** Standalone mode has no API server: events go to the log. */
export class LogEventRecorder implements EventRecorder {
  constructor(private readonly log: Logger) {}

  record(pod: PodInfo, type: EventType, reason: string, message: string): void {
    this.log[type === 'Warning' ? 'warn' : 'info']({ event: reason, pod: `${pod.namespace}/${pod.name}` }, message);
  }
}
