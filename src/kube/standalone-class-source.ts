import { describeZodError } from '../util/zod-error.js';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { invalidArgument, notFound } from '../driver/csi-error.js';
import { SPC_KIND, classNotFoundMessage, secretProviderClassSchema } from './secret-provider-class.js';
import type { ClassSource, SecretProviderClass } from './secret-provider-class.js';

/**
 * Standalone mode: SecretProviderClass objects from the `.yaml`/`.yml` files of a directory,
 * read on every lookup so an edit takes effect at the next publish. A document without a
 * namespace belongs to `default`, as `kubectl apply` would place it.
 */
export class StandaloneClassSource implements ClassSource {
  constructor(private readonly dir: string) {}

  get description(): string {
    return `standalone YAML directory ${this.dir}`;
  }

  async get(namespace: string, name: string): Promise<SecretProviderClass> {
    const found = (await this.load()).find(
      (c) => c.metadata.name === name && (c.metadata.namespace ?? 'default') === namespace,
    );
    if (!found) throw notFound(`${classNotFoundMessage(namespace, name)} (looked in ${this.dir})`);
    return found;
  }

  private async load(): Promise<SecretProviderClass[]> {
    const names = (await readdir(this.dir)).filter((n) => /\.ya?ml$/.test(n)).sort();
    const classes: SecretProviderClass[] = [];
    for (const fileName of names) {
      const docs = parseAllDocuments(await readFile(join(this.dir, fileName), 'utf8'));
      for (const doc of Array.isArray(docs) ? docs : [docs]) {
        if (doc.errors.length > 0) throw invalidArgument(`${fileName}: invalid YAML: ${doc.errors[0]?.message ?? ''}`);
        const value: unknown = doc.toJS();
        if (!value || typeof value !== 'object' || (value as { kind?: unknown }).kind !== SPC_KIND) continue;
        const parsed = secretProviderClassSchema.safeParse(value);
        if (!parsed.success) throw invalidArgument(`${fileName}: invalid SecretProviderClass: ${describeZodError(parsed.error)}`);
        classes.push(parsed.data);
      }
    }
    return classes;
  }
}
