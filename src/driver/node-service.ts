import type { EventRecorder } from '../events/event-recorder.js';
import type { PodTokenVerifier } from '../identity/pod-token.js';
import type { ClassSource } from '../kube/secret-provider-class.js';
import { podStatusObjects } from '../kube/pod-status.js';
import type { PodStatusObject, PodStatusSink, VolumePodStatus } from '../kube/pod-status.js';
import type { Logger } from '../log.js';
import type { FollowedObject, MountedReuse, ProviderFile, ProviderRegistry } from '../providers/provider.js';
import { describeCause } from '../errors/describe-cause.js';
import { cancelled, failedPrecondition, invalidArgument, PodvaultError, permissionDenied } from '../errors/podvault-error.js';
import type { FlexVolumePods } from '../identity/flexvolume-pod.js';
import { grpcStatusName } from './grpc-status.js';
import type { NodeGetCapabilitiesResponse, NodeGetInfoResponse, NodePublishVolumeRequest, NodeUnpublishVolumeRequest } from './csi-types.js';
import { KeyedMutex } from './keyed-mutex.js';
import { mapLimit } from '../util/map-limit.js';
import type { MountEngine } from './mount-engine.js';
import type { PublishGate } from './publish-gate.js';
import { checkTargetPath } from './paths.js';
import { parseKubeletTarget } from './kubelet-paths.js';
import { parseMountGroup } from './mount-group.js';
import { parsePublishRequest, parseUnpublishRequest } from './publish-request.js';
import type { PublishRequest } from './publish-request.js';
import type { CallContext } from './unary.js';
import { VolumeTable } from './volume-table.js';
import type { StateStore, VolumeState } from './state-store.js';
import type { KubeletTarget } from './kubelet-paths.js';
import type { MountedVolume } from './volume-table.js';
import { WrittenFiles } from './written-files.js';

export interface NodeServiceDeps {
  nodeId: string;
  kubeletDir: string;
  classes: ClassSource;
  providers: ProviderRegistry;
  engine: MountEngine;
  events: EventRecorder;
  /** Verifies the pod's bound service-account token; absent when no key source is configured. */
  podTokens?: PodTokenVerifier;
  /** Who a FlexVolume mount is for: the pod of its directory's uid, from the API. */
  flexVolumePods?: FlexVolumePods;
  /** Refuse publishes that carry no such token (--require-pod-token). */
  requirePodToken: boolean;
  /** A mounted volume is refetched when its files are older than this (ms). */
  rotationIntervalMs: number;
  /** Where volume facts survive a restart; none in tests that do not need it. */
  state?: StateStore;
  /** Bounds the publishes and rotations holding fetched data at once; unbounded when absent. */
  gate?: PublishGate;
  /** Where each CSI volume's SecretProviderClassPodStatus goes (Kubernetes mode); none standalone. */
  podStatus?: PodStatusSink;
  /**
   * The version watch's published versions (`--version-watch`): a rotation then keeps the objects
   * whose mounted version is still current and fetches only the others. Absent: every rotation
   * fetches every object.
   */
  versions?: Pick<MountedReuse, 'currentVersion'>;
  /** Observers of outcomes (metrics). */
  observe?: { publish(result: string): void; rotation(result: string): void; unpublish(result: string): void; podStatus?(result: string): void; rotationObjects?(from: 'vault' | 'mounted', count: number): void };
}

/** Volumes the rotation timer refetches at once: a bound on its burst against the vaults. */
export const TIMER_ROTATIONS_AT_ONCE = 4;

/**
 * A volume rotates on the version watch's events at most once per this long (the watcher's least
 * --interval): each event that names a version other than the mounted one made every volume of
 * the vault refetch, as its pod, so VaultObjectVersions rewritten many times a second (a
 * misbehaving or hostile writer, a version the vault never confirms) turned into as many vault
 * GETs per volume. Moves arriving sooner are taken when the spacing is over.
 */
export const WATCH_ROTATION_SPACING_MS = 1000;

/** The CSI Node service: plain async handlers; `server.ts` registers them through `unary()`. */
export class NodeService {
  private readonly locks = new KeyedMutex();
  /** The rotation timer's pass in progress, if any. */
  private timerPass: Promise<void> | undefined;
  /** Vaults whose published versions changed since the last watch pass began, and that pass. */
  private readonly movedVaults = new Set<string>();
  private watchPass: Promise<void> | undefined;
  readonly volumes = new VolumeTable();

  constructor(private readonly deps: NodeServiceDeps) {}

  /**
   * NodePublishVolume, also the kubelet's periodic republish (CSIDriver requiresRepublish):
   *   1. validate the request, its target path and the pod's token;
   *   2. under the volume's lock: podvault's volume at the target, finished or known to this
   *      driver, is a republish → rotate (below);
   *   3. otherwise a first publish: read the SecretProviderClass, fetch every object through its
   *      provider, then mount a tmpfs (unless an unfinished one of ours is there) and swap the files
   *      in. A failure before the mount leaves the node untouched, and any failure reaches the
   *      kubelet: a mounted but empty volume (a driver killed before its first swap) is never
   *      answered OK.
   */
  async publish(raw: NodePublishVolumeRequest, ctx: CallContext): Promise<Record<string, never>> {
    const startedAt = Date.now();
    const req = parsePublishRequest(raw);
    const target = await checkTargetPath('target_path', req.targetPath, this.deps.kubeletDir);
    this.checkTargetShape(req, target);
    if (req.inlineParameters) await this.takeFlexVolumePod(req, target, ctx.log);
    else await this.checkPodToken(req);
    const log = ctx.log.child({ volumeId: req.volumeId, pod: `${req.pod.namespace}/${req.pod.name}`, class: req.className });
    return this.locks.run(req.volumeId, async () => {
      if (await this.isRepublish(req, target)) await this.republish(req, target, log);
      else await this.firstPublish(req, target, log, ctx.signal, startedAt);
      return {};
    });
  }

  /**
   * Podvault's volume is at the target and either this driver published it (its files may have
   * been tampered with: the rotation then fails and is reported, the mount stays) or it holds a
   * finished write (published before a restart without --state-dir). Anything else mounted
   * there is refused by `inspect`.
   */
  private async isRepublish(req: PublishRequest, target: string): Promise<boolean> {
    const known = this.volumes.get(req.volumeId)?.target === target;
    const state = await this.deps.engine.inspect(target, { layout: !known });
    if (state.kind === 'none') return false;
    return known || state.complete;
  }

  private async firstPublish(req: PublishRequest, target: string, log: Logger, signal: AbortSignal, startedAt: number): Promise<void> {
    let leave = (): void => {};
    try {
      leave = await this.enterGate(signal);
      const { files, secretObjects } = await this.fetch(req, log, signal, startedAt);
      if (signal.aborted) throw cancelled('publish cancelled by the caller before the files were written');
      const outcome = await this.deps.engine.publish(target, files, false, req.mountGroup);
      const now = Date.now();
      const volume: MountedVolume = { volumeId: req.volumeId, target, request: req, fetchedAt: now, republishedAt: now, versions: versionsOf(files), ...this.watched(files) };
      this.volumes.set(volume);
      await this.deps.state?.save(volume);
      log.info({ target, mounted: outcome.mounted, objects: files.map((f) => ({ id: f.objectId, version: f.version, file: f.path })) }, 'published');
      this.deps.observe?.publish('ok');
      // Once per volume: republishes, rotations and recovered volumes never come through here.
      if (secretObjects) this.deps.events.record(req.pod, 'Normal', SECRET_OBJECTS_IGNORED, secretObjectsIgnoredMessage(req.className));
      const objects = podStatusObjects(files);
      leave(); // the status write holds no fetched data: the slot goes to the next publish
      await this.writePodStatus(volume, objects, log);
    } catch (err) {
      this.deps.observe?.publish(err instanceof PodvaultError ? grpcStatusName(err.kind) : 'INTERNAL');
      if (err instanceof PodvaultError) this.deps.events.record(req.pod, 'Warning', 'PublishFailed', `class ${req.className}: ${err.message}`);
      throw err;
    } finally {
      leave();
    }
  }

  /**
   * A republish of a volume we mounted: refetch when its files are older than the rotation
   * interval, and swap only when something changed. A failed refetch keeps the old files, is
   * logged, counted and raised as an event, and the call still answers OK: a kubelet that sees a
   * republish fail tears the pod's mount down (kubernetes/kubernetes#121271), which would turn a
   * Key Vault hiccup into a pod losing its secrets. The next republish retries.
   */
  private async republish(req: PublishRequest, target: string, log: Logger): Promise<void> {
    const now = Date.now();
    const known = this.volumes.get(req.volumeId);
    const volume: MountedVolume = known && known.target === target ? known : { volumeId: req.volumeId, target, request: req, fetchedAt: 0, republishedAt: now, versions: {} };
    volume.request = req; // fresh tokens and secrets from the kubelet
    volume.awaitingSecrets = false;
    volume.republishedAt = now;
    this.volumes.set(volume);
    if (now - volume.fetchedAt < this.deps.rotationIntervalMs) {
      if (volume.podStatus?.pending) await this.writePodStatus(volume, undefined, log);
      return;
    }
    await this.rotate(volume, log, 'republish');
  }

  /** Refetch a mounted volume and swap its files if anything changed; never throws. */
  private async rotate(volume: MountedVolume, log: Logger, trigger: 'republish' | 'timer' | 'watch'): Promise<void> {
    const controller = new AbortController();
    if (!(await this.deps.engine.isMounted(volume.target))) {
      // Unmounted behind our back (node cleanup, a kubelet that lost track): never mount it again
      // from the timer; the kubelet publishes anew if the pod still needs it.
      this.volumes.delete(volume.volumeId);
      this.deps.engine.forget(volume.target);
      await this.deps.state?.remove(volume.volumeId);
      log.warn({ target: volume.target }, 'volume no longer mounted; forgetting it');
      return;
    }
    let leave = (): void => {};
    try {
      leave = await this.enterGate(controller.signal);
      const { files } = await this.fetch(volume.request, log, controller.signal, Date.now(), this.reuseFor(volume));
      const changed = await this.deps.engine.publish(volume.target, files, true, volume.request.mountGroup);
      const versions = versionsOf(files);
      const from = fromCounts(files);
      const moved = Object.entries(versions).filter(([id, v]) => volume.versions[id] !== v).map(([id, v]) => ({ id, from: volume.versions[id], to: v }));
      volume.fetchedAt = Date.now();
      volume.versions = versions;
      Object.assign(volume, this.watched(files));
      await this.deps.state?.save(volume);
      log.info({ trigger, changed: changed.changed, versions: moved, ...(this.deps.versions ? { fetched: from.vault, kept: from.mounted } : {}) }, changed.changed ? 'rotated: new contents swapped in' : 'rotation check: nothing changed');
      this.deps.observe?.rotation(changed.changed ? 'rotated' : 'unchanged');
      if (this.deps.versions) {
        this.deps.observe?.rotationObjects?.('vault', from.vault);
        this.deps.observe?.rotationObjects?.('mounted', from.mounted);
      }
      const objects = podStatusObjects(files);
      leave();
      if (moved.length > 0 || !volume.podStatus || volume.podStatus.pending) await this.writePodStatus(volume, objects, log);
    } catch (err) {
      const message = err instanceof PodvaultError ? err.message : 'internal error; see the driver log';
      log.warn({ trigger, cause: describeCause(err) }, 'rotation failed; the mounted files are kept and the next republish retries');
      this.deps.observe?.rotation('failed');
      this.deps.events.record(volume.request.pod, 'Warning', 'RotationFailed', `class ${volume.request.className}: kept the mounted files: ${message}`);
    } finally {
      leave();
    }
  }

  /**
   * With the version watch, what a volume keeps of the files just written: the objects it follows
   * and what the next rotation may take back (digests of every file: not computed without it).
   */
  private watched(files: readonly ProviderFile[]): Pick<MountedVolume, 'follows' | 'written'> {
    return this.deps.versions ? { follows: followsOf(files), written: WrittenFiles.of(files) } : {};
  }

  /**
   * With the version watch: what a rotation of this volume may keep, the objects whose mounted
   * version the watch vouches is still current (and pinned ones), read back from its tmpfs.
   */
  private reuseFor(volume: MountedVolume): MountedReuse | undefined {
    const versions = this.deps.versions;
    const written = volume.written;
    if (!versions || !written) return undefined;
    return {
      mounted: volume.versions,
      madeFrom: written.madeFrom,
      currentVersion: (object) => versions.currentVersion(object),
      // Only the bytes this driver wrote there: anything else read back is fetched again.
      read: async (paths) => written.verified(await this.deps.engine.readMounted(volume.target, paths)),
    };
  }

  /**
   * The version watch published new versions for a vault: rotate, now, the volumes that mount a
   * version of one of its objects other than the published one (each fetches only what moved).
   * Changes arriving during a pass are taken by one more pass after it; each volume under its
   * lock, at most TIMER_ROTATIONS_AT_ONCE at once, as the timer's, and at most once per
   * WATCH_ROTATION_SPACING_MS (a volume rotated sooner is taken by a pass when it is over).
   */
  versionsChanged(vaultUrl: string, log: Logger): Promise<void> {
    this.movedVaults.add(vaultUrl);
    if (!this.watchPass) {
      this.watchPass = this.watchPasses(log).finally(() => {
        this.watchPass = undefined;
      });
    }
    return this.watchPass;
  }

  private async watchPasses(log: Logger): Promise<void> {
    const versions = this.deps.versions;
    while (versions && this.movedVaults.size > 0) {
      const vaults = new Set(this.movedVaults);
      this.movedVaults.clear();
      const candidates = this.volumes.all().filter((v) => !v.awaitingSecrets && v.follows?.some((f) => vaults.has(f.object.vaultUrl)));
      const moved: MountedVolume[] = [];
      for (const v of candidates) {
        for (const f of v.follows ?? []) {
          if (!vaults.has(f.object.vaultUrl)) continue;
          const current = await versions.currentVersion(f.object);
          if (current !== undefined && current !== v.versions[f.key]) {
            moved.push(v);
            break;
          }
        }
      }
      const now = Date.now();
      const due = moved.filter((v) => now - (v.watchRotatedAt ?? 0) >= WATCH_ROTATION_SPACING_MS);
      await mapLimit(due, TIMER_ROTATIONS_AT_ONCE, (v) =>
        this.locks.run(v.volumeId, async () => {
          v.watchRotatedAt = Date.now();
          if (this.volumes.get(v.volumeId) === v) await this.rotate(v, log.child({ volumeId: v.volumeId, pod: `${v.request.pod.namespace}/${v.request.pod.name}` }), 'watch');
        }),
      );
      const later = moved.filter((v) => !due.includes(v));
      if (later.length > 0) {
        const wakeAt = Math.min(...later.map((v) => (v.watchRotatedAt ?? 0) + WATCH_ROTATION_SPACING_MS));
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, wakeAt - Date.now())).unref());
        for (const vault of vaults) this.movedVaults.add(vault);
      }
    }
  }

  /** A slot of the publish gate, held while fetched data is in memory (until it is written). */
  private async enterGate(signal: AbortSignal): Promise<() => void> {
    return this.deps.gate ? this.deps.gate.enter(signal) : () => {};
  }

  /**
   * Rotate volumes the kubelet does not republish (FlexVolume mounts, or a CSIDriver without
   * requiresRepublish): those whose files and last republish are both older than the interval.
   * One pass at a time, each volume once per pass, at most `TIMER_ROTATIONS_AT_ONCE` at once: a
   * tick that used to queue another rotation behind each one still pending burst 11 fetches at
   * once after a restart, and more against a slow vault. A tick during a pass is skipped; a
   * volume the kubelet's republish rotated meanwhile is fresh again when its turn comes.
   */
  async rotateStale(log: Logger): Promise<void> {
    if (this.timerPass) return;
    this.timerPass = this.rotateStalePass(log).finally(() => {
      this.timerPass = undefined;
    });
    return this.timerPass;
  }

  private async rotateStalePass(log: Logger): Promise<void> {
    const interval = this.deps.rotationIntervalMs;
    const isStale = (v: MountedVolume, now = Date.now()): boolean => now - v.fetchedAt >= interval && now - v.republishedAt >= interval;
    const stale = this.volumes.all().filter((v) => isStale(v) && !v.awaitingSecrets);
    await mapLimit(stale, TIMER_ROTATIONS_AT_ONCE, (v) =>
      this.locks.run(v.volumeId, async () => {
        if (this.volumes.get(v.volumeId) === v && isStale(v)) await this.rotate(v, log.child({ volumeId: v.volumeId, pod: `${v.request.pod.namespace}/${v.request.pod.name}` }), 'timer');
      }),
    );
  }

  /**
   * After a restart: take back the volumes whose state was recorded and whose tmpfs is still
   * mounted, so they keep rotating and unpublish cleanly; forget the state of the others. A state
   * file is a claim to rotate files into a path as a pod's identity, so it is taken back only
   * when the mount table and the path agree with it (`recoveryProblem`); a file that does not was
   * tampered with or is stale, and is logged and removed.
   */
  async recover(log: Logger): Promise<number> {
    const state = this.deps.state;
    if (!state) return 0;
    const claimed = new Set<string>();
    let recovered = 0;
    for (const { file, state: s, legacy } of await state.loadAll()) {
      const problem = (await this.recoveryProblem(s)) ?? (claimed.has(s.target) ? 'another state file claims the same target' : undefined);
      if (problem) {
        await state.discard(file, problem);
        continue;
      }
      claimed.add(s.target);
      await this.deps.engine.adopt(s.target);
      const request: PublishRequest = { volumeId: s.volumeId, targetPath: s.target, className: s.className, ...(s.inlineParameters ? { inlineParameters: s.inlineParameters } : {}), ...(s.mountGroup === undefined ? {} : { mountGroup: s.mountGroup }), pod: s.pod, secrets: {}, tokens: {} };
      const volume: MountedVolume = { volumeId: s.volumeId, target: s.target, request, fetchedAt: s.fetchedAt, republishedAt: 0, versions: s.versions, ...(s.usesSecretRef ? { awaitingSecrets: true } : {}) };
      this.volumes.set(volume);
      // Under its hashed name first; the old file goes only once the new one is written.
      if (legacy && (await state.save(volume))) await state.discard(file, 'named by an earlier driver; saved anew under the sha256 of its volume id');
      recovered += 1;
    }
    log.info({ recovered }, 'volumes recovered from the state directory');
    return recovered;
  }

  /**
   * Why a recorded volume is not taken back, if it is not: its target must have the kubelet's
   * shape for its kind (CSI, or FlexVolume with inline parameters), the pod uid in the path must
   * be the state's pod, and the newest mount exactly at the target must be podvault's tmpfs.
   */
  private async recoveryProblem(s: VolumeState): Promise<string | undefined> {
    let shape: KubeletTarget;
    try {
      shape = parseKubeletTarget('target', await checkTargetPath('target', s.target, this.deps.kubeletDir), this.deps.kubeletDir);
    } catch (err) {
      return err instanceof PodvaultError ? err.message : 'target is not a kubelet volume path';
    }
    if ((shape.kind === 'flexvolume') !== (s.inlineParameters !== undefined)) return `a ${shape.kind} target with ${s.inlineParameters ? '' : 'no '}FlexVolume parameters`;
    if (shape.podUid !== s.pod.uid) return `target belongs to pod uid ${shape.podUid}, not ${s.pod.uid}`;
    // From the target itself: one read of a changing mount table can miss its line (mount-probe.ts).
    const at = await this.deps.engine.probe(s.target);
    if (at.kind === 'absent' || at.kind === 'directory') return 'target is no longer mounted';
    if (at.kind === 'other') return `target holds ${at.what}, not podvault's tmpfs`;
    return undefined;
  }

  /** The volume's files, and whether its class asks for `secretObjects` (which podvault ignores). */
  private async fetch(req: PublishRequest, log: Logger, signal: AbortSignal, startedAt = Date.now(), reuse?: MountedReuse): Promise<{ files: ProviderFile[]; secretObjects: boolean }> {
    // FlexVolume mounts name no class: the shim passes the Azure provider's parameters inline.
    const spec = req.inlineParameters ? { provider: 'azure', parameters: req.inlineParameters } : (await this.deps.classes.get(req.pod.namespace, req.className)).spec;
    const provider = this.deps.providers.get(spec.provider, req.className);
    const files = await provider.fetch({ className: req.className, pod: req.pod, parameters: spec.parameters, secrets: req.secrets, tokens: req.tokens, signal, log, startedAt, ...(reuse ? { reuse } : {}) });
    return { files, secretObjects: 'secretObjects' in spec && Array.isArray(spec.secretObjects) && spec.secretObjects.length > 0 };
  }

  /**
   * Create or update the volume's SecretProviderClassPodStatus (CSI volumes in Kubernetes mode;
   * FlexVolume mounts have no class). Never throws and is bounded by the writer: a failure is
   * counted and marks the status pending, so the next republish or rotation writes it again.
   * `fresh` absent: rewrite what was last meant to be written.
   */
  private async writePodStatus(volume: MountedVolume, fresh: PodStatusObject[] | undefined, log: Logger): Promise<void> {
    const sink = this.deps.podStatus;
    if (!sink || volume.request.inlineParameters) return;
    const objects = fresh ?? volume.podStatus?.objects;
    if (!objects) return;
    const status: VolumePodStatus = { pod: volume.request.pod, className: volume.request.className, targetPath: volume.target, objects };
    const written = await sink.write(status, log);
    volume.podStatus = { objects, pending: !written };
    this.deps.observe?.podStatus?.(written ? 'written' : 'failed');
  }

  /** On unpublish: the status goes too (the pod's garbage collection is the backstop when this fails). */
  private async removePodStatus(volume: MountedVolume | undefined, log: Logger): Promise<void> {
    const sink = this.deps.podStatus;
    if (!sink || !volume || volume.request.inlineParameters) return;
    const removed = await sink.remove({ pod: volume.request.pod, className: volume.request.className, targetPath: volume.target, objects: [] }, log);
    this.deps.observe?.podStatus?.(removed ? 'removed' : 'failed');
  }

  /**
   * A FlexVolume publish carries no token (the kubelet passes none) and its pod keys are the pod's
   * own options, so its pod is taken from the API by the uid of the kubelet's mount directory
   * (FlexVolumePods) and `req.pod` set to it. That lookup is the proof of who is asking, so
   * FlexVolume publishes are served with --require-pod-token too.
   */
  private async takeFlexVolumePod(req: PublishRequest, target: string, log: Logger): Promise<void> {
    const shape = parseKubeletTarget('target_path', target, this.deps.kubeletDir);
    if (!this.deps.flexVolumePods) throw failedPrecondition('FlexVolume mounts are not served by this driver (no pod source)');
    const { pod, fsGroup } = await this.deps.flexVolumePods.find(shape.podUid, shape.volumeName, log);
    req.pod = pod;
    // The group too is the API's, never the caller's (`parseMountGroup` bounds it as for CSI).
    delete req.mountGroup;
    if (fsGroup !== undefined) req.mountGroup = parseMountGroup(String(fsGroup), 'the pod\'s spec.securityContext.fsGroup');
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

  /**
   * The target must have the kubelet's shape for the kind of publish, and a CSI publish's pod uid
   * (volume context, which a caller of the socket writes) must be the uid the kubelet put in the
   * path: the path is the kubelet's choice, so it is what the pod's identity is checked against.
   */
  private checkTargetShape(req: PublishRequest, target: string): void {
    const shape = parseKubeletTarget('target_path', target, this.deps.kubeletDir);
    if (req.inlineParameters) {
      if (shape.kind !== 'flexvolume') throw invalidArgument('target_path: FlexVolume parameters are only accepted for a FlexVolume mount directory');
      return;
    }
    if (shape.kind !== 'csi') throw invalidArgument('target_path: a CSI publish must target <kubelet>/pods/<uid>/volumes/kubernetes.io~csi/<volume>/mount');
    if (req.pod.uid !== shape.podUid) {
      throw invalidArgument(`volume_context csi.storage.k8s.io/pod.uid must be the pod uid of target_path (${shape.podUid}): the CSIDriver object must set podInfoOnMount: true`);
    }
  }

  async unpublish(raw: NodeUnpublishVolumeRequest, ctx: CallContext): Promise<Record<string, never>> {
    const req = parseUnpublishRequest(raw);
    const target = await checkTargetPath('target_path', req.targetPath, this.deps.kubeletDir);
    parseKubeletTarget('target_path', target, this.deps.kubeletDir);
    return this.locks.run(req.volumeId, async () => {
      try {
        await this.deps.engine.unpublish(target);
      } catch (err) {
        this.deps.observe?.unpublish('failed');
        throw err;
      }
      const known = this.volumes.get(req.volumeId);
      this.volumes.delete(req.volumeId);
      await this.deps.state?.remove(req.volumeId);
      this.deps.observe?.unpublish('ok');
      await this.removePodStatus(known?.target === target ? known : undefined, ctx.log);
      ctx.log.info({ volumeId: req.volumeId, target }, 'unpublished');
      return {};
    });
  }

  async getCapabilities(): Promise<NodeGetCapabilitiesResponse> {
    // Ephemeral inline volumes need no stage/unstage, stats or expansion. VOLUME_MOUNT_GROUP: with
    // fsGroupPolicy File the kubelet then sends the pod's fsGroup as volume_mount_group and leaves
    // the volume's ownership to us, instead of chowning it itself (which fails on the read-only
    // tmpfs) — so non-root pods can read their files (secrets-store-csi-driver#858).
    return { capabilities: [{ rpc: { type: 'VOLUME_MOUNT_GROUP' } }] };
  }

  async getInfo(): Promise<NodeGetInfoResponse> {
    return { nodeId: this.deps.nodeId, maxVolumesPerNode: '0' };
  }
}

/** Reason of the Normal event on a pod whose class has `spec.secretObjects`. */
export const SECRET_OBJECTS_IGNORED = 'SecretObjectsIgnored';

function secretObjectsIgnoredMessage(className: string): string {
  return `class ${className}: spec.secretObjects is ignored: podvault never copies Key Vault objects into Kubernetes Secrets (that would store them in etcd). The volume is mounted: read the files in it, or, for environment variables, the volume's env file (see the README section "Environment variables").`;
}

function versionsOf(files: readonly ProviderFile[]): Record<string, string> {
  return Object.fromEntries(files.map((f) => [`${f.objectId}:${f.path}`, f.version]));
}

/** The files that follow an object's current version, by their `versionsOf` key: what the watch is compared with. */
function followsOf(files: readonly ProviderFile[]): Array<{ key: string; object: FollowedObject }> {
  return files.flatMap((f) => (f.follows ? [{ key: `${f.objectId}:${f.path}`, object: f.follows }] : []));
}

/** How many objects (object and version) a fetch took from the vault, and how many it kept from the volume. */
function fromCounts(files: readonly ProviderFile[]): { vault: number; mounted: number } {
  const seen = new Map<string, 'vault' | 'mounted'>();
  for (const f of files) if (f.from) seen.set(`${f.objectId}@${f.version}`, f.from);
  let vault = 0;
  for (const from of seen.values()) if (from === 'vault') vault += 1;
  return { vault, mounted: seen.size - vault };
}
