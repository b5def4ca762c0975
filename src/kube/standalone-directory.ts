import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { invalidArgument } from '../errors/podvault-error.js';

/** One object from a standalone file, with the file it came from. */
export interface StandaloneObject {
  kind: string;
  namespace: string;
  name: string;
  file: string;
  value: Record<string, unknown>;
}

/**
 * Standalone mode's stand-in for the API server: the Kubernetes objects in the `.yaml`/`.yml`
 * files of one directory (SecretProviderClass, AzureIdentity, AzureIdentityBinding, Pod,
 * ServiceAccount, Secret), read on every lookup so an edit takes effect at the next publish.
 * A document without a namespace belongs to `default`, as `kubectl apply` would place it.
 */
export class StandaloneDirectory {
  private cached?: { signature: string; objects: StandaloneObject[] };

  constructor(readonly dir: string) {}

  async list(kind: string, namespace?: string): Promise<StandaloneObject[]> {
    return (await this.load()).filter((o) => o.kind === kind && (namespace === undefined || o.namespace === namespace));
  }

  async get(kind: string, namespace: string, name: string): Promise<StandaloneObject | undefined> {
    return (await this.list(kind, namespace)).find((o) => o.name === name);
  }

  /** Parsed again only when a file was added, removed or changed (name, size, mtime). */
  private async load(): Promise<StandaloneObject[]> {
    const names = (await readdir(this.dir)).filter((n) => /\.ya?ml$/.test(n)).sort();
    const stats = await Promise.all(names.map((n) => stat(join(this.dir, n))));
    const signature = names.map((n, i) => `${n}:${stats[i]?.size}:${stats[i]?.mtimeMs}`).join('|');
    if (this.cached?.signature === signature) return this.cached.objects;
    const objects: StandaloneObject[] = [];
    for (const file of names) {
      for (const doc of parseAllDocuments(await readFile(join(this.dir, file), 'utf8'))) {
        if (doc.errors.length > 0) throw invalidArgument(`${file}: invalid YAML: ${doc.errors[0]?.message ?? ''}`);
        const value: unknown = doc.toJS();
        if (!value || typeof value !== 'object' || Array.isArray(value)) continue;
        const record = value as Record<string, unknown>;
        const meta = (record.metadata ?? {}) as { name?: unknown; namespace?: unknown };
        if (typeof record.kind !== 'string' || typeof meta.name !== 'string') continue;
        const namespace = typeof meta.namespace === 'string' ? meta.namespace : 'default';
        objects.push({ kind: record.kind, namespace, name: meta.name, file, value: { ...record, metadata: { ...(record.metadata as object), namespace } } });
      }
    }
    this.cached = { signature, objects };
    return objects;
  }
}
