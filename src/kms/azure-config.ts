import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
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
  const text = await readBounded(path);
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

/**
 * At most the limit (plus one byte, to tell a larger file) from a regular file. Opened
 * non-blocking and checked before reading: a FIFO would block the open or the read forever and a
 * device (a symlink to /dev/zero) never ends.
 */
async function readBounded(path: string): Promise<string> {
  const handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK).catch((err: NodeJS.ErrnoException) => {
    throw new Error(`--config-file-path ${path}: cannot read it (${err.code ?? 'error'})`);
  });
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw new Error(`--config-file-path ${path}: not a regular file`);
    if (stat.size > MAX_AZURE_JSON_BYTES) throw new Error(`--config-file-path ${path}: larger than ${MAX_AZURE_JSON_BYTES} bytes`);
    const buffer = Buffer.alloc(MAX_AZURE_JSON_BYTES + 1);
    let length = 0;
    while (length < buffer.length) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    if (length > MAX_AZURE_JSON_BYTES) throw new Error(`--config-file-path ${path}: larger than ${MAX_AZURE_JSON_BYTES} bytes`);
    return buffer.subarray(0, length).toString('utf8');
  } finally {
    await handle.close();
  }
}
