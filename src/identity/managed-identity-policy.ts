import { permissionDenied } from '../errors/podvault-error.js';

/** One `--allow-managed-identity NAMESPACE=ID`: pods of NAMESPACE (`*`: any) may use managed identity ID. */
export interface ManagedIdentityGrant {
  namespace: string;
  /** Client id or resource id, normalised by `managedIdentityId`. */
  id: string;
}

const NAMESPACE = /^(\*|[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)$/;
/** Client ids are GUIDs; resource ids `/subscriptions/…/userAssignedIdentities/<name>`. */
const ID = /^[-\w.()/]{1,1024}$/;

/** Azure compares both forms case-insensitively; a trailing slash names the same resource. */
export function managedIdentityId(value: string): string {
  const id = value.trim().replace(/\/+$/, '').toLowerCase();
  if (!ID.test(id)) throw new Error(`${JSON.stringify(value)} is not a managed identity client id or resource id`);
  return id;
}

/** `NAMESPACE=ID` → a grant; throws a message naming what is wrong (the caller names the flag). */
export function parseManagedIdentityGrant(value: string): ManagedIdentityGrant {
  const at = value.indexOf('=');
  const namespace = at < 0 ? '' : value.slice(0, at).trim();
  if (!NAMESPACE.test(namespace)) throw new Error(`${JSON.stringify(value)} must be NAMESPACE=ID (a namespace or *, then a client id or resource id)`);
  return { namespace, id: managedIdentityId(value.slice(at + 1)) };
}

export interface ManagedIdentityPolicyOptions {
  /** --allow-managed-identity */
  grants: readonly ManagedIdentityGrant[];
  /** --node-managed-identity: the VM's and kubelet's own identities, normalised. */
  nodeIdentities: readonly string[];
  /** --allow-node-identity */
  allowNodeIdentity: boolean;
}

/**
 * Which managed identities a pod may use. IMDS hands any identity attached to the node VM to
 * anyone on the node who asks by its id, so an AzureIdentity of type 0 (which any author of
 * AzureIdentities in a namespace can write) would otherwise reach every identity of the VM, the
 * node's own included. Deny by default:
 *   - the node's own identities (--node-managed-identity) only with --allow-node-identity, whatever
 *     --allow-managed-identity says (every pod on the node would share them);
 *   - any other only where the operator granted it to the pod's namespace (or `*`) with
 *     --allow-managed-identity NAMESPACE=ID.
 * Messages name the pod's own AzureIdentity and the flag, never the operator's other grants.
 */
export class ManagedIdentityPolicy {
  private readonly nodeIdentities: ReadonlySet<string>;

  constructor(private readonly options: ManagedIdentityPolicyOptions) {
    this.nodeIdentities = new Set(options.nodeIdentities.map(managedIdentityId));
  }

  private granted(namespace: string, id: string): boolean {
    return this.options.grants.some((g) => (g.namespace === '*' || g.namespace === namespace) && g.id === id);
  }

  /** An AzureIdentity of type 0 naming `rawId`, used by a pod of `namespace`. */
  checkAzureIdentity(identityRef: string, namespace: string, rawId: string): void {
    const id = safeId(rawId);
    const shown = id ?? JSON.stringify(rawId.slice(0, 64));
    if (id !== undefined && this.nodeIdentities.has(id)) {
      if (this.options.allowNodeIdentity) return;
      throw permissionDenied(
        `${identityRef}: managed identity ${shown} is the node's own identity (--node-managed-identity), which every pod on the node would share; this driver runs without --allow-node-identity`,
      );
    }
    if (id !== undefined && this.granted(namespace, id)) return;
    throw permissionDenied(
      `${identityRef}: type 0 (managed identity ${shown}) is not allowed for namespace ${namespace}; the node's operator allows a managed identity per namespace with --allow-managed-identity ${namespace}=<client or resource id>`,
    );
  }

  /**
   * `useVMManagedIdentity` (already refused without --allow-node-identity): the system-assigned
   * identity, or a user-assigned one listed with --node-managed-identity or granted to the namespace.
   */
  checkNodeIdentity(who: string, namespace: string, rawId: string): void {
    if (rawId === '') return;
    const id = safeId(rawId);
    const shown = id ?? JSON.stringify(rawId.slice(0, 64));
    if (id !== undefined && (this.nodeIdentities.has(id) || this.granted(namespace, id))) return;
    throw permissionDenied(
      `no identity for ${who}: userAssignedIdentityID ${shown} is neither one of the node's identities (--node-managed-identity) nor allowed for namespace ${namespace} (--allow-managed-identity)`,
    );
  }
}

function safeId(raw: string): string | undefined {
  try {
    return managedIdentityId(raw);
  } catch {
    return undefined;
  }
}
