import { status } from '@grpc/grpc-js';
import type { Logger } from '../log.js';
import type { ClassSource } from '../kube/secret-provider-class.js';
import type { ProviderRegistry } from '../providers/provider.js';
import { CsiError, permissionDenied } from './csi-error.js';
import type { NodeGetCapabilitiesResponse, NodeGetInfoResponse, NodePublishVolumeRequest, NodeUnpublishVolumeRequest } from './csi-types.js';
import { KeyedMutex } from './keyed-mutex.js';
import type { MountEngine } from './mount-engine.js';
import { checkTargetPath } from './paths.js';
import { parsePublishRequest, parseUnpublishRequest } from './publish-request.js';
import type { PublishRequest } from './publish-request.js';
import type { PodTokenVerifier } from '../identity/pod-token.js';
import type { CallContext } from './unary.js';

export interface NodeServiceDeps {
  nodeId: string;
  kubeletDir: string;
  classes: ClassSource;
  providers: ProviderRegistry;
  engine: MountEngine;
  /** Verifies the pod's bound service-account token; absent when no key source is configured. */
  podTokens?: PodTokenVerifier;
  /** Refuse publishes that carry no such token (--require-pod-token). */
  requirePodToken: boolean;
}

/** The CSI Node service: plain async handlers; `server.ts` registers them through `unary()`. */
export class NodeService {
  private readonly locks = new KeyedMutex();

  constructor(private readonly deps: NodeServiceDeps) {}

  /**
   * NodePublishVolume, also the kubelet's periodic republish:
   *   1. validate the request; 2. check the target path; 3. under the volume's lock, read the
   *   SecretProviderClass; 4. fetch every object through its provider; 5. mount (first time) and
   *   swap the files in atomically. A failure before step 5 leaves the node untouched.
   */
  async publish(raw: NodePublishVolumeRequest, ctx: CallContext): Promise<Record<string, never>> {
    const req = parsePublishRequest(raw);
    const log = ctx.log.child({ volumeId: req.volumeId, pod: `${req.pod.namespace}/${req.pod.name}`, class: req.className });
    const target = await checkTargetPath('target_path', req.targetPath, this.deps.kubeletDir);
    await this.checkPodToken(req);
    return this.locks.run(req.volumeId, async () => {
      const spc = await this.deps.classes.get(req.pod.namespace, req.className);
      const provider = this.deps.providers.get(spc.spec.provider, req.className);
      const files = await provider.fetch({
        className: req.className,
        pod: req.pod,
        parameters: spc.spec.parameters,
        secrets: req.secrets,
        tokens: req.tokens,
        signal: ctx.signal,
        log,
      });
      if (ctx.signal.aborted) throw new CsiError(status.CANCELLED, 'publish cancelled by the caller before the files were written');
      const outcome = await this.deps.engine.publish(target, files);
      log.info(
        { target, mounted: outcome.mounted, changed: outcome.changed, objects: files.map((f) => ({ id: f.objectId, version: f.version, file: f.path })) },
        'published',
      );
      return {};
    });
  }

  /**
   * A token for podvault's audience, when present, must prove the volume's pod; a forged or
   * foreign one is refused even when tokens are not required. Missing: refused only with
   * --require-pod-token (clusters whose CSIDriver does not request it yet keep working).
   */
  private async checkPodToken(req: PublishRequest): Promise<void> {
    const { podTokens, requirePodToken } = this.deps;
    const token = podTokens ? req.tokens[podTokens.audience] : undefined;
    if (podTokens && token) return podTokens.verify(token, req.pod);
    if (requirePodToken) {
      throw permissionDenied(
        `no service-account token for audience ${podTokens?.audience ?? '(none)'} in the publish of pod ${req.pod.namespace}/${req.pod.name}: the CSIDriver object must request it (tokenRequests); this driver runs with --require-pod-token`,
      );
    }
  }

  async unpublish(raw: NodeUnpublishVolumeRequest, ctx: CallContext): Promise<Record<string, never>> {
    const req = parseUnpublishRequest(raw);
    const target = await checkTargetPath('target_path', req.targetPath, this.deps.kubeletDir);
    return this.locks.run(req.volumeId, async () => {
      await this.deps.engine.unpublish(target);
      ctx.log.info({ volumeId: req.volumeId, target }, 'unpublished');
      return {};
    });
  }

  async getCapabilities(): Promise<NodeGetCapabilitiesResponse> {
    // Ephemeral inline volumes need no stage/unstage, stats or expansion.
    return { capabilities: [] };
  }

  async getInfo(): Promise<NodeGetInfoResponse> {
    return { nodeId: this.deps.nodeId, maxVolumesPerNode: '0' };
  }
}
