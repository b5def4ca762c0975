import { invalidArgument } from '../errors/podvault-error.js';
import type { NodePublishVolumeRequest, NodeUnpublishVolumeRequest } from './csi-types.js';
import type { PodInfo } from '../identity/pod-info.js';
import { SERVICE_ACCOUNT_TOKENS_KEY } from './redact.js';
import { FLEXVOLUME_PARAMETERS_KEY } from '../flexvolume/options.js';
import { parseMountGroup } from './mount-group.js';

/** A NodePublishVolume request after validation: past this point no code sees raw input. */
export interface PublishRequest {
  volumeId: string;
  targetPath: string;
  className: string;
  /** A FlexVolume mount's parameters (no SecretProviderClass); only from the FlexVolume shim. */
  inlineParameters?: Record<string, string>;
  pod: PodInfo;
  /** nodePublishSecretRef contents, without the service-account tokens. */
  secrets: Readonly<Record<string, string>>;
  /** Service-account tokens by audience (CSIDriver `tokenRequests`). */
  tokens: Readonly<Record<string, string>>;
  /** The pod's fsGroup (`volume_mount_group`): files and directories are made readable to it. */
  mountGroup?: number;
}

export interface UnpublishRequest {
  volumeId: string;
  targetPath: string;
}

export const CLASS_KEY = 'secretProviderClass';
export const POD_NAME_KEY = 'csi.storage.k8s.io/pod.name';
export const POD_NAMESPACE_KEY = 'csi.storage.k8s.io/pod.namespace';
export const POD_UID_KEY = 'csi.storage.k8s.io/pod.uid';
export const SERVICE_ACCOUNT_KEY = 'csi.storage.k8s.io/serviceAccount.name';
export const EPHEMERAL_KEY = 'csi.storage.k8s.io/ephemeral';

/** The pod of a FlexVolume publish until the node service has read it from the API. */
export const UNRESOLVED_POD: PodInfo = Object.freeze({ namespace: '', name: '', uid: '', serviceAccount: '' });

/** The kubelet's volume ids are `csi-<sha256 hex>`; other COs use similar printable ids. */
const VOLUME_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,252}$/;
/** Kubernetes object names (DNS subdomain) and namespaces (DNS label). */
const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS_LABEL = /^(?=.{1,63}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

function volumeIdOf(raw: string | undefined): string {
  const volumeId = raw ?? '';
  if (volumeId === '') throw invalidArgument('volume_id is required');
  if (!VOLUME_ID.test(volumeId)) throw invalidArgument('volume_id must be 1-253 letters, digits, dots, dashes, colons or underscores');
  return volumeId;
}

function targetPathOf(raw: string | undefined): string {
  const targetPath = raw ?? '';
  if (targetPath === '') throw invalidArgument('target_path is required');
  return targetPath;
}

/** Check the fields the CSI spec requires and podvault relies on; name the field that is wrong. */
export function parsePublishRequest(req: NodePublishVolumeRequest): PublishRequest {
  const volumeId = volumeIdOf(req.volumeId);
  const targetPath = targetPathOf(req.targetPath);

  const capability = req.volumeCapability;
  if (!capability) throw invalidArgument('volume_capability is required');
  if (capability.block) throw invalidArgument('volume_capability: block access is not supported; podvault publishes files (use a csi volume mount, not a volumeDevice)');
  if (!capability.mount) throw invalidArgument('volume_capability: access_type mount is required');
  const mountGroup = parseMountGroup(capability.mount.volumeMountGroup);
  const group = mountGroup === undefined ? {} : { mountGroup };

  if (!req.readonly) {
    throw invalidArgument('readonly must be true: set readOnly: true on the pod\'s csi volume (podvault volumes are read-only)');
  }

  const context = req.volumeContext ?? {};
  if (Object.keys(context).length === 0) {
    throw invalidArgument('volume_context is required: set volumeAttributes.secretProviderClass on the pod\'s csi volume');
  }
  const inlineParameters = parseInlineParameters(context);
  const className = inlineParameters ? 'flexvolume' : (context[CLASS_KEY] ?? '').trim();
  if (className === '') throw invalidArgument('volume_context.secretProviderClass is required: set volumeAttributes.secretProviderClass on the pod\'s csi volume');
  if (!DNS_SUBDOMAIN.test(className)) throw invalidArgument(`volume_context.secretProviderClass ${JSON.stringify(className)} is not a valid object name`);

  const { [SERVICE_ACCOUNT_TOKENS_KEY]: tokensInSecrets, ...secrets } = req.secrets ?? {};
  const tokens = parseTokens(tokensInSecrets ?? context[SERVICE_ACCOUNT_TOKENS_KEY]);
  // A FlexVolume mount's pod keys come from options the pod itself writes (the kubelet merges the
  // volume's options over its own keys): they are ignored, and the node service takes the pod
  // from the API by the uid of the kubelet's mount directory (FlexVolumePods).
  if (inlineParameters) return { volumeId, targetPath, className, inlineParameters, pod: UNRESOLVED_POD, secrets, tokens, ...group };

  const podInfoHint = 'the CSIDriver object must set podInfoOnMount: true';
  const namespace = context[POD_NAMESPACE_KEY] ?? '';
  if (namespace === '') throw invalidArgument(`volume_context ${POD_NAMESPACE_KEY} is missing: ${podInfoHint}`);
  if (!DNS_LABEL.test(namespace)) throw invalidArgument(`volume_context ${POD_NAMESPACE_KEY} is not a valid namespace`);
  const name = context[POD_NAME_KEY] ?? '';
  if (name === '') throw invalidArgument(`volume_context ${POD_NAME_KEY} is missing: ${podInfoHint}`);
  if (!DNS_SUBDOMAIN.test(name)) throw invalidArgument(`volume_context ${POD_NAME_KEY} is not a valid pod name`);
  const uid = context[POD_UID_KEY] ?? '';
  if (uid !== '' && !/^[-A-Za-z0-9]{1,64}$/.test(uid)) throw invalidArgument(`volume_context ${POD_UID_KEY} is not a valid uid`);
  const serviceAccount = context[SERVICE_ACCOUNT_KEY] ?? '';
  if (serviceAccount !== '' && !DNS_SUBDOMAIN.test(serviceAccount)) throw invalidArgument(`volume_context ${SERVICE_ACCOUNT_KEY} is not a valid service account name`);

  return { volumeId, targetPath, className, pod: { namespace, name, uid, serviceAccount }, secrets, tokens, ...group };
}

/**
 * FlexVolume mounts carry their parameters inline. Honoured only when the request is not the
 * kubelet's CSI ephemeral publish (which always says `csi.storage.k8s.io/ephemeral: "true"` and
 * whose other keys a pod writes): a CSI pod cannot bypass the SecretProviderClass this way.
 */
function parseInlineParameters(context: Record<string, string>): Record<string, string> | undefined {
  const raw = context[FLEXVOLUME_PARAMETERS_KEY];
  if (raw === undefined) return undefined;
  if (context[EPHEMERAL_KEY] === 'true') throw invalidArgument(`volume_context ${FLEXVOLUME_PARAMETERS_KEY} is only accepted from the FlexVolume driver`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw invalidArgument(`volume_context ${FLEXVOLUME_PARAMETERS_KEY} is not JSON`);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed) || !Object.values(parsed).every((v) => typeof v === 'string')) {
    throw invalidArgument(`volume_context ${FLEXVOLUME_PARAMETERS_KEY} must be an object of strings`);
  }
  return parsed as Record<string, string>;
}

/**
 * `csi.storage.k8s.io/serviceAccount.tokens`: `{"<audience>":{"token":"<JWT>","expirationTimestamp":"..."}}`.
 * The kubelet puts it in `secrets` (serviceAccountTokenInSecrets, Kubernetes 1.35+) or in the
 * volume context; the caller reads `secrets` first. The message never quotes the value.
 */
function parseTokens(raw: string | undefined): Record<string, string> {
  if (raw === undefined || raw === '') return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw invalidArgument(`${SERVICE_ACCOUNT_TOKENS_KEY} is not valid JSON`);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw invalidArgument(`${SERVICE_ACCOUNT_TOKENS_KEY} must be a JSON object keyed by audience`);
  const tokens: Record<string, string> = {};
  for (const [audience, entry] of Object.entries(parsed as Record<string, unknown>)) {
    const token = (entry as { token?: unknown } | null)?.token;
    if (typeof token !== 'string' || token === '') throw invalidArgument(`${SERVICE_ACCOUNT_TOKENS_KEY}: the entry for audience ${JSON.stringify(audience)} has no token`);
    tokens[audience] = token;
  }
  return tokens;
}

export function parseUnpublishRequest(req: NodeUnpublishVolumeRequest): UnpublishRequest {
  return { volumeId: volumeIdOf(req.volumeId), targetPath: targetPathOf(req.targetPath) };
}
