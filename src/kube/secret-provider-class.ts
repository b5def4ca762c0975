import { z } from 'zod';

export const SPC_GROUP = 'secrets-store.csi.x-k8s.io';
export const SPC_VERSION = 'v1';
export const SPC_PLURAL = 'secretproviderclasses';
export const SPC_KIND = 'SecretProviderClass';

/**
 * The part of the upstream Secrets Store CSI driver's SecretProviderClass (v1) that podvault
 * reads. Unknown fields (status...) are allowed and ignored, so classes written for the upstream
 * driver load unchanged. `secretObjects` (sync into a Kubernetes Secret) is read only to tell the
 * pod it is ignored: podvault keeps Key Vault objects out of etcd.
 */
export const secretProviderClassSchema = z.object({
  apiVersion: z.string().optional(),
  kind: z.string().optional(),
  metadata: z.object({
    name: z.string().min(1),
    namespace: z.string().optional(),
    resourceVersion: z.string().optional(),
  }),
  spec: z.object({
    provider: z.string().min(1),
    parameters: z.record(z.string(), z.string()).default({}),
    // Only whether it lists anything matters; the entries are never looked at, nor its shape checked.
    secretObjects: z.unknown().optional(),
  }),
});

export type SecretProviderClass = z.infer<typeof secretProviderClassSchema>;

/** Where SecretProviderClass objects come from: the Kubernetes API or a standalone directory. */
export interface ClassSource {
  readonly description: string;
  /** The class, or a not-found PodvaultError naming class and namespace. */
  get(namespace: string, name: string): Promise<SecretProviderClass>;
}

/** The user-facing message for a missing class; the kubelet shows it in the pod's events. */
export function classNotFoundMessage(namespace: string, name: string): string {
  return `SecretProviderClass ${JSON.stringify(name)} not found in namespace ${JSON.stringify(namespace)}`;
}
