import { notFound } from '../errors/podvault-error.js';
import { parseKubeObject } from './parse-object.js';
import { SPC_KIND, classNotFoundMessage, secretProviderClassSchema } from './secret-provider-class.js';
import type { ClassSource, SecretProviderClass } from './secret-provider-class.js';
import type { StandaloneDirectory } from './standalone-directory.js';

/** Standalone mode: SecretProviderClass objects from a directory of YAML files. */
export class StandaloneClassSource implements ClassSource {
  constructor(private readonly directory: StandaloneDirectory) {}

  get description(): string {
    return `standalone YAML directory ${this.directory.dir}`;
  }

  async get(namespace: string, name: string): Promise<SecretProviderClass> {
    const found = await this.directory.get(SPC_KIND, namespace, name);
    if (!found) throw notFound(`${classNotFoundMessage(namespace, name)} (looked in ${this.directory.dir})`);
    return parseKubeObject(secretProviderClassSchema, found.value, SPC_KIND, found.file);
  }
}
