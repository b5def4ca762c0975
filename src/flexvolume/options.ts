import { stringify } from 'yaml';

/** The volume context key that carries a FlexVolume mount's parameters to the driver. */
export const FLEXVOLUME_PARAMETERS_KEY = 'podvault.dev/flexvolume-parameters';

export interface FlexMount {
  /** SecretProviderClass-style parameters for the Azure provider. */
  parameters: Record<string, string>;
  /** clientid / clientsecret from the volume's secretRef, decoded. */
  secrets: Record<string, string>;
}

export class FlexOptionsError extends Error {}

/**
 * The options the kubelet passes to `mount` for a pod using the retired
 * kubernetes-keyvault-flexvol (`keyvaultname`, `keyvaultobjectnames` `;`-separated, ...), turned
 * into the Azure provider's parameters so both paths share one engine. Secret values arrive
 * base64 under `kubernetes.io/secret/<key>`.
 *
 * The `kubernetes.io/pod.*` and `serviceAccount.name` keys are not read: the kubelet merges the
 * volume's own options over them, so a pod can write them (and name another pod). The driver
 * takes the pod from the API by the uid of the mount directory instead.
 */
export function parseFlexOptions(options: Record<string, unknown>): FlexMount {
  const get = (key: string): string => {
    const value = options[key];
    return typeof value === 'string' ? value.trim() : '';
  };
  const list = (key: string): string[] => (get(key) === '' ? [] : get(key).split(';').map((s) => s.trim()));

  // Like CSI, only read-only volumes: a writable one would be writable in the container, letting
  // the pod plant links or files the driver's root writes then follow. (The pod can forge this key
  // too; the driver checks the pod's spec from the API as well.)
  if (get('kubernetes.io/readwrite') !== 'ro') {
    throw new FlexOptionsError('the podvault flexVolume must set readOnly: true (podvault volumes are read-only)');
  }
  const names = list('keyvaultobjectnames');
  if (names.length === 0) throw new FlexOptionsError('option keyvaultobjectnames is required (names separated by ;)');
  const types = list('keyvaultobjecttypes');
  const versions = list('keyvaultobjectversions');
  const aliases = list('keyvaultobjectaliases');
  for (const [key, values] of [['keyvaultobjecttypes', types], ['keyvaultobjectversions', versions], ['keyvaultobjectaliases', aliases]] as const) {
    if (values.length > 0 && values.length !== names.length) {
      throw new FlexOptionsError(`option ${key} has ${values.length} entries for ${names.length} keyvaultobjectnames`);
    }
  }
  const objects = stringify({
    array: names.map((objectName, i) =>
      stringify({
        objectName,
        objectType: types[i] || 'secret',
        ...(versions[i] ? { objectVersion: versions[i] } : {}),
        ...(aliases[i] ? { objectAlias: aliases[i] } : {}),
      }),
    ),
  });

  const parameters: Record<string, string> = { objects, tenantId: get('tenantid') };
  if (get('keyvaultname')) parameters.keyvaultName = get('keyvaultname');
  if (get('vaulturi')) parameters.vaultUri = get('vaulturi');
  if (get('cloudname')) parameters.cloudName = get('cloudname');
  if (get('usepodidentity')) parameters.usePodIdentity = get('usepodidentity');
  if (get('usevmmanagedidentity')) parameters.useVMManagedIdentity = get('usevmmanagedidentity');
  if (get('vmmanagedidentityclientid')) parameters.userAssignedIdentityID = get('vmmanagedidentityclientid');

  const secrets: Record<string, string> = {};
  for (const [key, value] of Object.entries(options)) {
    if (!key.startsWith('kubernetes.io/secret/') || typeof value !== 'string') continue;
    const name = key.slice('kubernetes.io/secret/'.length);
    secrets[name] = Buffer.from(value, 'base64').toString('utf8');
  }

  // The kubelet's `kubernetes.io/mounterArgs.FsGroup` is not read: the pod's options can overwrite
  // it with a gid its admission policy would refuse. The driver takes the fsGroup from the pod's
  // spec in the API, as it takes the pod itself (src/identity/flexvolume-pod.ts).
  return { parameters, secrets };
}
