import { ApiException, CustomObjectsApi } from '@kubernetes/client-node';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from '../log.js';
import { describeCause } from '../errors/describe-cause.js';
import { SPC_GROUP, SPC_VERSION } from './secret-provider-class.js';
import { SPCPS_PLURAL, podStatusBody, podStatusName } from './pod-status.js';
import type { PodStatusSink, VolumePodStatus } from './pod-status.js';

/** Longest a status write may hold up a publish; the request itself may finish later. */
export const POD_STATUS_TIMEOUT_MS = 2000;

/**
 * SecretProviderClassPodStatus objects through the API (create, or replace at the version read),
 * each call bounded by `timeoutMs`. Failures are logged here and reported as false: the status
 * is a report for people and tools, never a reason to fail or hold a publish.
 */
export class KubePodStatusWriter implements PodStatusSink {
  private readonly api: CustomObjectsApi;

  constructor(
    kubeConfig: KubeConfig,
    private readonly nodeName: string,
    private readonly timeoutMs = POD_STATUS_TIMEOUT_MS,
  ) {
    this.api = kubeConfig.makeApiClient(CustomObjectsApi);
  }

  write(status: VolumePodStatus, log: Logger): Promise<boolean> {
    return this.bounded('write', status, log, async () => {
      const name = podStatusName(status);
      const where = { group: SPC_GROUP, version: SPC_VERSION, namespace: status.pod.namespace, plural: SPCPS_PLURAL };
      // Create first: a new volume costs one request; only an existing object is read and replaced.
      try {
        await this.api.createNamespacedCustomObject({ ...where, body: podStatusBody(status, this.nodeName) });
        return;
      } catch (err) {
        if (!(err instanceof ApiException && err.code === 409)) throw err;
      }
      const existing = await this.read(status);
      if (!existing) await this.api.createNamespacedCustomObject({ ...where, body: podStatusBody(status, this.nodeName) });
      else await this.api.replaceNamespacedCustomObject({ ...where, name, body: podStatusBody(status, this.nodeName, existing.metadata?.resourceVersion) });
    });
  }

  /** Deleted only while it still describes this volume's target (another volume of the pod may have written it since). */
  remove(status: VolumePodStatus, log: Logger): Promise<boolean> {
    return this.bounded('remove', status, log, async () => {
      const existing = await this.read(status);
      if (!existing || existing.status?.targetPath !== status.targetPath) return;
      await this.api.deleteNamespacedCustomObject({ group: SPC_GROUP, version: SPC_VERSION, namespace: status.pod.namespace, plural: SPCPS_PLURAL, name: podStatusName(status) }).catch((err: unknown) => {
        if (!(err instanceof ApiException && err.code === 404)) throw err;
      });
    });
  }

  private async read(status: VolumePodStatus): Promise<{ metadata?: { resourceVersion?: string }; status?: { targetPath?: unknown } } | undefined> {
    try {
      return (await this.api.getNamespacedCustomObject({ group: SPC_GROUP, version: SPC_VERSION, namespace: status.pod.namespace, plural: SPCPS_PLURAL, name: podStatusName(status) })) as { metadata?: { resourceVersion?: string } };
    } catch (err) {
      if (err instanceof ApiException && err.code === 404) return undefined;
      throw err;
    }
  }

  private async bounded(op: 'write' | 'remove', status: VolumePodStatus, log: Logger, work: () => Promise<void>): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), this.timeoutMs);
    });
    const outcome = work().then(
      () => 'ok' as const,
      (err: unknown) => err,
    );
    try {
      const result = await Promise.race([outcome, timeout]);
      if (result === 'ok') return true;
      const cause = result === 'timeout' ? { name: 'Timeout', message: `no answer within ${this.timeoutMs} ms` } : describeCause(result);
      log.warn({ name: podStatusName(status), namespace: status.pod.namespace, cause }, `could not ${op} the SecretProviderClassPodStatus; the volume is served and the next republish or rotation retries`);
      return false;
    } finally {
      clearTimeout(timer);
    }
  }
}
