import { invalidArgument } from '../errors/podvault-error.js';
import { globMatch } from '../util/glob.js';
import type { AzureIdentityBinding } from './crds.js';

export const ALLOWED_SERVICE_ACCOUNTS_ANNOTATION = 'podvault.dev/allowed-service-accounts';
export const ALLOWED_OBJECTS_ANNOTATION = 'podvault.dev/allowed-objects';

/** Which objects an identity may read through podvault: globs over `<vault>/<objectName>`. */
export interface ObjectRule {
  patterns: string[];
  /** Where the rule comes from, for the denial message (names only the pod's namespace's objects). */
  source: string;
}

export interface BindingRule {
  serviceAccounts?: string[];
  objects?: ObjectRule;
}

/**
 * podvault's narrowing of an AzureIdentityBinding, beyond Azure's own RBAC (annotations, so the
 * CRD stays the AAD Pod Identity one):
 *   podvault.dev/allowed-service-accounts: "web, worker"   only pods running as these
 *   podvault.dev/allowed-objects: "myvault/db-*, myvault/api-token"   only these objects
 * `<vault>` is the vault's name (first label of its host) or its full host[:port]; `*` and `?` glob.
 * `shown` is how messages name the binding (`visibleRef`).
 */
export function bindingRule(binding: AzureIdentityBinding, shown: string, own = true): BindingRule {
  const annotations = binding.metadata.annotations ?? {};
  const list = (value: string | undefined): string[] | undefined =>
    value === undefined ? undefined : value.split(',').map((s) => s.trim()).filter((s) => s !== '');
  const serviceAccounts = list(annotations[ALLOWED_SERVICE_ACCOUNTS_ANNOTATION]);
  const patterns = list(annotations[ALLOWED_OBJECTS_ANNOTATION]);
  for (const p of patterns ?? []) {
    // A binding of another namespace (--cluster-wide-bindings) is not quoted to this pod.
    if (!/^[^/\s]+\/[^/\s]+$/.test(p)) throw invalidArgument(`${shown}: annotation ${ALLOWED_OBJECTS_ANNOTATION} entry ${own ? `${JSON.stringify(p)} ` : ''}must be <vault>/<object>`);
  }
  return {
    ...(serviceAccounts ? { serviceAccounts } : {}),
    ...(patterns ? { objects: { patterns, source: `${shown} annotation ${ALLOWED_OBJECTS_ANNOTATION}` } } : {}),
  };
}

/** Whether `rule` lets the identity read `objectName` from the vault at `vaultUrl`. */
export function ruleAllows(rule: ObjectRule, vaultUrl: string, objectName: string): boolean {
  const host = new URL(vaultUrl).host;
  const vaultName = host.split('.')[0] ?? host;
  return rule.patterns.some((pattern) => {
    const [vault = '', object = ''] = pattern.split('/');
    return (globMatch(vault, vaultName) || globMatch(vault, host)) && globMatch(object, objectName);
  });
}
