import { z } from 'zod';
import { parseKubeObject } from './parse-object.js';
import type { ConfigMapData, ConfigMapSource } from './config-maps.js';
import type { StandaloneDirectory } from './standalone-directory.js';

const configMapSchema = z.object({ metadata: z.object({ name: z.string() }), data: z.record(z.string(), z.string()).default({}) });

/** Standalone mode: ConfigMaps are `kind: ConfigMap` documents of the standalone directory, like classes. */
export class StandaloneConfigMaps implements ConfigMapSource {
  constructor(private readonly directory: StandaloneDirectory) {}

  async get(namespace: string, name: string): Promise<ConfigMapData | undefined> {
    const found = await this.directory.get('ConfigMap', namespace, name);
    if (!found) return undefined;
    return { data: parseKubeObject(configMapSchema, found.value, 'ConfigMap', found.file).data };
  }
}
