import { CoreV1Api } from '@kubernetes/client-node';
import type { KubeConfig } from '@kubernetes/client-node';
import type { EventRecorder, EventType } from '../events/event-recorder.js';
import type { PodInfo } from '../identity/pod-info.js';
import type { Logger } from '../log.js';
import { describeCause } from '../errors/describe-cause.js';

/** Events created through the API (core/v1), fire and forget: a failing event never fails a publish. */
export class KubeEventRecorder implements EventRecorder {
  private readonly core: CoreV1Api;

  constructor(
    kubeConfig: KubeConfig,
    private readonly nodeId: string,
    private readonly log: Logger,
  ) {
    this.core = kubeConfig.makeApiClient(CoreV1Api);
  }

  record(pod: PodInfo, type: EventType, reason: string, message: string): void {
    const now = new Date();
    this.core
      .createNamespacedEvent({
        namespace: pod.namespace,
        body: {
          metadata: { generateName: `${pod.name}.`, namespace: pod.namespace },
          involvedObject: { apiVersion: 'v1', kind: 'Pod', namespace: pod.namespace, name: pod.name, ...(pod.uid ? { uid: pod.uid } : {}) },
          reason,
          message: message.slice(0, 1024),
          type,
          source: { component: 'podvault', host: this.nodeId },
          reportingComponent: 'csi.podvault.dev',
          reportingInstance: this.nodeId,
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
        },
      })
      .catch((err: unknown) => this.log.warn({ reason, cause: describeCause(err) }, 'could not record a Kubernetes event'));
  }
}
