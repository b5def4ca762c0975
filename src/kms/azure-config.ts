import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { describeZodError } from '../util/zod-error.js';

/** azure.json is a few KiB; a larger file is not one. */
const MAX_AZURE_JSON_BYTES = 256 * 1024;

/**
 * The keys of the cloud-provider config file (`/etc/kubernetes/azure.json`) that Azure/kubernetes-kms
 * reads, with the same names and meanings, so its `--config-file-path` migrates unchanged. Every
 * other key of the file (the cloud provider's own) is ignored.
 */
const azureConfigSchema = z.object({
  cloud: z.string().default(''),
  tenantId: z.string().default(''),
  aadClientId: z.string().default(''),
  aadClientSecret: z.string().default(''),
  useManagedIdentityExtension: z.boolean().default(false),
  userAssignedIdentityID: z.string().default(''),
  aadClientCertPath: z.string().default(''),
  aadClientCertPassword: z.string().default(''),
});

export type AzureConfig = z.infer<typeof azureConfigSchema>;

/** Read and check the file. Errors name the file and the key, never a value (the file holds a secret). */
export async function readAzureConfig(path: string): Promise<AzureConfig> {
  const text = await readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw new Error(`--config-file-path ${path}: cannot read it (${err.code ?? 'error'})`);
  });
  if (Buffer.byteLength(text) > MAX_AZURE_JSON_BYTES) throw new Error(`--config-file-path ${path}: larger than ${MAX_AZURE_JSON_BYTES} bytes`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    // JSON.parse quotes the text it choked on, which may be the secret: not repeated.
    throw new Error(`--config-file-path ${path}: not valid JSON`);
  }
  const parsed = azureConfigSchema.safeParse(json);
  if (!parsed.success) throw new Error(`--config-file-path ${path}: ${describeZodError(parsed.error)}`);
  return parsed.data;
}
