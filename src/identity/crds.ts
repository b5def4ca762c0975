import { z } from 'zod';
import { PodvaultError } from '../errors/podvault-error.js';

/**
 * The AAD Pod Identity CRDs (`aadpodidentity.k8s.io/v1`) that clusters already use to bind Azure
 * identities to pods, and the Kubernetes objects identity resolution reads. Only the fields
 * podvault uses are checked; the rest pass through, so existing manifests load unchanged.
 */
export const AAD_POD_IDENTITY_GROUP = 'aadpodidentity.k8s.io';
export const AAD_POD_IDENTITY_VERSION = 'v1';
export const AZURE_IDENTITY_PLURAL = 'azureidentities';
export const AZURE_IDENTITY_BINDING_PLURAL = 'azureidentitybindings';
export const POD_IDENTITY_LABEL = 'aadpodidbinding';

const metadata = z.object({
  name: z.string().min(1),
  namespace: z.string().optional(),
  uid: z.string().optional(),
  resourceVersion: z.string().optional(),
  labels: z.record(z.string(), z.string()).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
});

/** `type`: 0 user-assigned managed identity, 1 service principal (secret), 2 service principal (certificate). */
export const azureIdentitySchema = z.object({
  metadata,
  spec: z.object({
    type: z.union([z.literal(0), z.literal(1), z.literal(2)]),
    clientID: z.string().trim().optional(),
    resourceID: z.string().trim().optional(),
    tenantID: z.string().trim().optional(),
    clientPassword: z.object({ name: z.string().min(1), namespace: z.string().optional() }).optional(),
    adEndpoint: z.string().trim().optional(),
  }),
});
export type AzureIdentity = z.infer<typeof azureIdentitySchema>;

export const azureIdentityBindingSchema = z.object({
  metadata,
  spec: z.object({
    azureIdentity: z.string().min(1),
    selector: z.string().min(1),
    weight: z.number().int().optional(),
  }),
});
export type AzureIdentityBinding = z.infer<typeof azureIdentityBindingSchema>;

/** A pod volume, as far as FlexVolume identity needs it (which driver, read-only or not). */
const podVolume = z.object({
  name: z.string(),
  flexVolume: z.object({ driver: z.string(), readOnly: z.boolean().optional() }).optional(),
});

export const podSchema = z.object({
  metadata,
  spec: z
    .object({
      serviceAccountName: z.string().optional(),
      nodeName: z.string().optional(),
      volumes: z.array(podVolume).optional(),
      securityContext: z.object({ fsGroup: z.number().int().optional() }).optional(),
    })
    .default({}),
});
export type PodObject = z.infer<typeof podSchema>;

export const serviceAccountSchema = z.object({ metadata });
export type ServiceAccountObject = z.infer<typeof serviceAccountSchema>;

/** A listed object that does not validate: where it is, and the error naming it. */
export interface MalformedObject {
  namespace: string;
  name: string;
  error: PodvaultError;
}

export interface BindingList {
  bindings: AzureIdentityBinding[];
  malformed: MalformedObject[];
}

/** Validate each listed binding, keeping the malformed ones apart. */
export function sortBindings(items: readonly unknown[], parse: (item: unknown) => AzureIdentityBinding): BindingList {
  const list: BindingList = { bindings: [], malformed: [] };
  for (const item of items) {
    try {
      list.bindings.push(parse(item));
    } catch (err) {
      if (!(err instanceof PodvaultError)) throw err;
      const meta = (item as { metadata?: { namespace?: unknown; name?: unknown } } | null)?.metadata;
      list.malformed.push({ namespace: typeof meta?.namespace === 'string' ? meta.namespace : 'default', name: typeof meta?.name === 'string' ? meta.name : '(unnamed)', error: err });
    }
  }
  return list;
}

/** A Secret's data, decoded. */
export type SecretData = Readonly<Record<string, Buffer>>;

/**
 * The cluster objects identity resolution reads, from the Kubernetes API or a standalone
 * directory. A missing object is `undefined`; a malformed one throws a PodvaultError naming it.
 */
export interface IdentityObjects {
  /** `uid`: the pod the kubelet reported; a cached pod of another uid (recreated) is re-read. */
  getPod(namespace: string, name: string, uid?: string): Promise<PodObject | undefined>;
  /** The pod with this uid among the pods scheduled to `nodeName` (FlexVolume: the uid is the mount path's). */
  findPodByUid(uid: string, nodeName: string): Promise<PodObject | undefined>;
  getServiceAccount(namespace: string, name: string): Promise<ServiceAccountObject | undefined>;
  /**
   * Bindings of one namespace, or of all namespaces when `namespace` is undefined. Malformed ones
   * are returned apart, so the caller decides what a pod may be told about them. `direct`: past
   * any cache (a denial for want of a binding is confirmed against the API).
   */
  listBindings(namespace: string | undefined, options?: { direct?: boolean }): Promise<BindingList>;
  getIdentity(namespace: string, name: string): Promise<AzureIdentity | undefined>;
  getSecret(namespace: string, name: string): Promise<SecretData | undefined>;
}
