import { azureIdentityBindingSchema, azureIdentitySchema, podSchema, serviceAccountSchema, sortBindings } from '../identity/crds.js';
import type { AzureIdentity, BindingList, IdentityObjects, PodObject, SecretData, ServiceAccountObject } from '../identity/crds.js';
import { parseKubeObject } from './parse-object.js';
import type { StandaloneDirectory } from './standalone-directory.js';

/** Identity objects (pods, bindings, identities, secrets) from a standalone YAML directory. */
export class StandaloneIdentityObjects implements IdentityObjects {
  constructor(private readonly directory: StandaloneDirectory) {}

  async getPod(namespace: string, name: string): Promise<PodObject | undefined> {
    const found = await this.directory.get('Pod', namespace, name);
    return found && parseKubeObject(podSchema, found.value, 'Pod', found.file);
  }

  /** Standalone pods may omit spec.nodeName (no scheduler); one that names another node is not ours. */
  async findPodByUid(uid: string, nodeName: string): Promise<PodObject | undefined> {
    for (const found of await this.directory.list('Pod')) {
      const value = found.value as { metadata?: { uid?: unknown }; spec?: { nodeName?: unknown } };
      if (value.metadata?.uid !== uid) continue;
      const node = value.spec?.nodeName;
      if (node !== undefined && node !== nodeName) continue;
      return parseKubeObject(podSchema, found.value, 'Pod', found.file);
    }
    return undefined;
  }

  async getServiceAccount(namespace: string, name: string): Promise<ServiceAccountObject | undefined> {
    const found = await this.directory.get('ServiceAccount', namespace, name);
    return found && parseKubeObject(serviceAccountSchema, found.value, 'ServiceAccount', found.file);
  }

  async listBindings(namespace: string | undefined): Promise<BindingList> {
    const found = await this.directory.list('AzureIdentityBinding', namespace);
    const files = new Map(found.map((o) => [o.value, o.file]));
    return sortBindings(found.map((o) => o.value), (value) => parseKubeObject(azureIdentityBindingSchema, value, 'AzureIdentityBinding', files.get(value as Record<string, unknown>)));
  }

  async getIdentity(namespace: string, name: string): Promise<AzureIdentity | undefined> {
    const found = await this.directory.get('AzureIdentity', namespace, name);
    return found && parseKubeObject(azureIdentitySchema, found.value, 'AzureIdentity', found.file);
  }

  async getSecret(namespace: string, name: string): Promise<SecretData | undefined> {
    const found = await this.directory.get('Secret', namespace, name);
    if (!found) return undefined;
    const data: Record<string, Buffer> = {};
    const { data: encoded, stringData } = found.value as { data?: Record<string, unknown>; stringData?: Record<string, unknown> };
    for (const [k, v] of Object.entries(encoded ?? {})) if (typeof v === 'string') data[k] = Buffer.from(v, 'base64');
    for (const [k, v] of Object.entries(stringData ?? {})) if (typeof v === 'string') data[k] = Buffer.from(v, 'utf8');
    return data;
  }
}
