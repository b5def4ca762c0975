import { describeCause } from '../errors/describe-cause.js';
import { permissionDenied } from '../errors/podvault-error.js';
import type { Logger } from '../log.js';
import { POD_IDENTITY_LABEL } from './crds.js';
import type { AzureIdentity, AzureIdentityBinding, IdentityObjects } from './crds.js';
import { podRef } from './pod-info.js';
import type { PodInfo } from './pod-info.js';
import { readForeignSafe, visibleRef, withLoggedDetail } from './visible-ref.js';

export interface BoundIdentity {
  binding: AzureIdentityBinding;
  identity: AzureIdentity;
}

export interface PodIdentityOptions {
  /** Honour bindings and identities of other namespaces (the retired project's default; not ours). */
  clusterWideBindings: boolean;
}

/**
 * The AzureIdentity the cluster bound to a pod, the AAD Pod Identity way: the pod's
 * `aadpodidbinding` label selects AzureIdentityBindings whose `spec.selector` equals it; the
 * binding names an AzureIdentity. Deny by default:
 *   - only the pod's own namespace is searched, unless `--cluster-wide-bindings` (otherwise any pod
 *     could take another namespace's identity by setting a label);
 *   - the pod must exist with the uid the kubelet reported (a recreated pod is another pod);
 *   - several bindings: the highest `spec.weight` wins, ties by namespace/name; the choice is logged.
 */
export async function findBoundIdentity(objects: IdentityObjects, pod: PodInfo, options: PodIdentityOptions, log: Logger): Promise<BoundIdentity> {
  const who = `pod ${podRef(pod)}`;
  const podObject = await objects.getPod(pod.namespace, pod.name, pod.uid);
  if (!podObject) throw permissionDenied(`no identity for ${who}: the pod does not exist in the Kubernetes API`);
  if (pod.uid !== '' && podObject.metadata.uid !== undefined && podObject.metadata.uid !== pod.uid) {
    // The API's uid is another pod's (a recreated one, or one a caller named): log it, never tell it.
    throw withLoggedDetail(
      permissionDenied(`no identity for ${who}: the pod of that name in the Kubernetes API is not the one the kubelet reported (uid ${pod.uid})`),
      `no identity for ${who}: the API's pod of that name has uid ${podObject.metadata.uid}, the kubelet reported ${pod.uid}`,
    );
  }
  const selector = podObject.metadata.labels?.[POD_IDENTITY_LABEL];
  if (!selector) throw permissionDenied(`no identity for ${who}: the pod has no ${POD_IDENTITY_LABEL} label`);

  const scope = options.clusterWideBindings ? undefined : pod.namespace;
  let matches = (await listBindings(objects, scope, pod, log)).filter((b) => b.spec.selector === selector);
  // A binding created a moment before the pod may not have reached a cache yet: confirm a denial.
  if (matches.length === 0) matches = (await listBindings(objects, scope, pod, log, true)).filter((b) => b.spec.selector === selector);
  if (matches.length === 0) {
    throw permissionDenied(
      `no identity for ${who}: no AzureIdentityBinding ${scope ? `in namespace ${scope} ` : ''}has selector ${JSON.stringify(selector)}`,
    );
  }
  const ref = (b: AzureIdentityBinding): string => `${b.metadata.namespace ?? ''}/${b.metadata.name}`;
  matches.sort((a, b) => (b.spec.weight ?? 0) - (a.spec.weight ?? 0) || (ref(a) < ref(b) ? -1 : ref(a) > ref(b) ? 1 : 0));
  const binding = matches[0]!;
  if (matches.length > 1) {
    log.info({ chosen: ref(binding), candidates: matches.map(ref) }, 'several AzureIdentityBindings select this pod; the highest weight wins, then the name');
  }

  const bindingNamespace = binding.metadata.namespace ?? pod.namespace;
  const identityNamespace = bindingNamespace;
  const identityName = binding.spec.azureIdentity;
  const identity = await readForeignSafe(pod.namespace, identityNamespace, `no identity for pod ${podRef(pod)}: cannot use an object of another namespace that its binding names`, () => objects.getIdentity(identityNamespace, identityName));
  if (!identity) {
    const bindingShown = visibleRef(pod.namespace, 'AzureIdentityBinding', bindingNamespace, binding.metadata.name);
    throw withLoggedDetail(
      permissionDenied(`no identity for ${who}: ${bindingShown} names ${visibleRef(pod.namespace, 'AzureIdentity', identityNamespace, identityName)}, which does not exist`),
      `no identity for ${who}: AzureIdentityBinding ${ref(binding)} names AzureIdentity ${identityNamespace}/${identityName}, which does not exist`,
    );
  }
  return { binding, identity };
}

/**
 * The bindings in scope. With --cluster-wide-bindings, a malformed binding of another namespace is
 * skipped and logged: its name and fields are not the pod's to read, and one tenant's typo must
 * not stop every other tenant's publishes. A malformed one of the pod's namespace is refused,
 * named (its author is the pod's namespace).
 */
async function listBindings(objects: IdentityObjects, scope: string | undefined, pod: PodInfo, log: Logger, direct = false): Promise<AzureIdentityBinding[]> {
  const { bindings, malformed } = await objects.listBindings(scope, direct ? { direct } : {});
  for (const m of malformed) {
    if (m.namespace === pod.namespace) throw m.error;
    log.warn({ binding: `${m.namespace}/${m.name}`, cause: describeCause(m.error) }, 'skipping a malformed AzureIdentityBinding of another namespace');
  }
  return bindings;
}

