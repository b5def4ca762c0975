import { appendFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { buildDriverConfig } from '../../src/config/driver-config.js';
import type { DriverConfig, DriverFlags } from '../../src/config/driver-config.js';
import { startDevVault } from '../../src/devvault/server.js';
import type { DevVault, DevVaultOptions } from '../../src/devvault/server.js';
import { parseSeed } from '../../src/devvault/seed.js';
import { devVaultDriverFlags } from '../../src/devvault/driver-flags.js';
import { CsiClient } from '../../src/driver/client.js';
import { ephemeralVolume } from '../../src/driver/kubelet-volume.js';
import type { EphemeralVolume } from '../../src/driver/kubelet-volume.js';
import { startDriver } from '../../src/driver/server.js';
import type { RunningDriver } from '../../src/driver/server.js';
import { createLogger } from '../../src/log.js';
import { readMountInfo } from '../../src/driver/mountinfo.js';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const isRoot = process.getuid?.() === 0;

export const CLIENT_ID = 'app-client-0001';
export const CLIENT_SECRET = 'client-secret-value-0001';
export const OTHER_CLIENT_ID = 'other-client-0002';
export const OTHER_CLIENT_SECRET = 'client-secret-value-0002';

/** Secret values the tests look for in logs: distinctive strings that must never appear there. */
export const SECRET_VALUES = {
  dbPassword: 'pw-Zq81-never-log-me',
  apiToken: 'tok-Kx77-never-log-me',
};

export const TEST_SEED = `
clients:
  - clientId: ${CLIENT_ID}
    clientSecret: ${CLIENT_SECRET}
    read: ["db-*", "api-token", "hexed", "b64", "disabled-one"]
  - clientId: ${OTHER_CLIENT_ID}
    clientSecret: ${OTHER_CLIENT_SECRET}
    read: ["other-*"]
secrets:
  - name: db-password
    value: ${SECRET_VALUES.dbPassword}
  - name: db-user
    value: app
  - name: api-token
    versions:
      - value: tok-old
      - value: ${SECRET_VALUES.apiToken}
  - name: hexed
    value: "00ff10"
  - name: b64
    value: "AAEC/w=="
  - name: disabled-one
    value: x
    enabled: false
  - name: other-secret
    value: for-other-only
`;

export interface ObjectSpec {
  objectName: string;
  objectType?: string;
  [field: string]: string | undefined;
}

/** The `objects` parameter exactly as users write it: YAML `array:` of YAML strings. */
export function objectsParameter(objects: readonly ObjectSpec[]): string {
  return stringify({ array: objects.map((o) => stringify({ objectType: 'secret', ...o })) });
}

export interface Harness {
  vault: DevVault;
  config: DriverConfig;
  driver: RunningDriver;
  client: CsiClient;
  kubeletDir: string;
  classDir: string;
  logs: string[];
  /** Write (or replace) a YAML file of Kubernetes objects in the standalone directory. */
  writeObjects(file: string, objects: readonly object[]): Promise<void>;
  removeObjects(file: string): Promise<void>;
  /** Write (or replace) a SecretProviderClass in the standalone directory. */
  writeClass(name: string, parameters: Record<string, string>, options?: { namespace?: string; provider?: string }): Promise<void>;
  /** Parameters for the dev-vault with the given objects. */
  vaultParameters(objects: readonly ObjectSpec[]): Record<string, string>;
  /** A pod's volume as the kubelet would publish it, with the parent directory the kubelet makes. */
  volume(options?: { pod?: string; namespace?: string; uid?: string; serviceAccount?: string; className?: string; secrets?: Record<string, string>; tokens?: Record<string, string>; volumeName?: string; mountGroup?: string }): Promise<EphemeralVolume>;
  close(): Promise<void>;
}

let podCounter = 0;

/**
 * `extraVaults`: further running dev-vaults the driver trusts (their CA) and allows (`--allow-vault-uri`),
 * for classes that read several vaults; `otherTenants`: further tenants of the harness vault's Entra ID.
 */
export async function startHarness(flags: DriverFlags = {}, vaultOptions: { latencyMs?: number; tokenProxy?: DevVaultOptions['tokenProxy']; otherTenants?: string[]; vaultResource?: string; extraVaults?: DevVault[] } = {}): Promise<Harness> {
  const workDir = await mkdtemp('/dev/shm/podvault-test-');
  const classDir = join(workDir, 'classes');
  const kubeletDir = join(workDir, 'kubelet');
  await mkdir(classDir);
  await mkdir(kubeletDir);
  const { extraVaults = [], ...devVaultOptions } = vaultOptions;
  const vault = await startDevVault({ seed: parseSeed(TEST_SEED, 'test seed'), ...devVaultOptions });
  const logs: string[] = [];
  const vaultFlags = await devVaultDriverFlags(vault, workDir, { standalone: classDir, kubeletDir });
  if (extraVaults.length > 0 && vaultFlags.caFile) {
    await appendFile(vaultFlags.caFile, extraVaults.map((v) => v.caPem).join(''));
    vaultFlags.allowVaultUri = [...(vaultFlags.allowVaultUri ?? []), ...extraVaults.map((v) => v.url)];
  }
  const config = buildDriverConfig({ ...vaultFlags, nodeId: 'test-node', logLevel: 'debug', ...flags }, {});
  const driver = await startDriver({ config, log: createLogger({ level: 'debug', destination: { write: (line: string) => void logs.push(line) } }) });
  const client = new CsiClient(config.endpoint);

  const harness: Harness = {
    vault,
    config,
    driver,
    client,
    kubeletDir,
    classDir,
    logs,
    async writeObjects(file, objects) {
      await writeFile(join(classDir, file), objects.map((o) => stringify(o)).join('---\n'));
    },
    async removeObjects(file) {
      await rm(join(classDir, file), { force: true });
    },
    async writeClass(name, parameters, options = {}) {
      const doc = {
        apiVersion: 'secrets-store.csi.x-k8s.io/v1',
        kind: 'SecretProviderClass',
        metadata: { name, namespace: options.namespace ?? 'default' },
        spec: { provider: options.provider ?? 'azure', parameters },
      };
      await writeFile(join(classDir, `${options.namespace ?? 'default'}-${name}.yaml`), stringify(doc));
    },
    vaultParameters(objects) {
      return { vaultUri: vault.url, tenantId: vault.tenantId, objects: objectsParameter(objects) };
    },
    async volume(options = {}) {
      podCounter += 1;
      const uid = options.uid ?? `00000000-0000-4000-8000-${String(podCounter).padStart(12, '0')}`;
      const volume = ephemeralVolume({
        kubeletDir,
        pod: { namespace: options.namespace ?? 'default', name: options.pod ?? `pod-${podCounter}`, uid, serviceAccount: options.serviceAccount ?? 'default' },
        volumeName: options.volumeName ?? 'secrets',
        className: options.className ?? 'app',
        secrets: options.secrets ?? { clientid: CLIENT_ID, clientsecret: CLIENT_SECRET },
        ...(options.tokens ? { tokens: options.tokens } : {}),
        ...(options.mountGroup === undefined ? {} : { mountGroup: options.mountGroup }),
      });
      await mkdir(join(volume.targetPath, '..'), { recursive: true, mode: 0o750 });
      return volume;
    },
    async close() {
      client.close();
      await driver.stop(1000);
      await vault.close();
      // A failed test may leave a volume mounted; unmount it so the work directory can go.
      for (const m of (await readMountInfo()).filter((e) => e.mountPoint.startsWith(`${workDir}/`)).reverse()) {
        await run('umount', [m.mountPoint]).catch(() => undefined);
      }
      await rm(workDir, { recursive: true, force: true });
    },
  };
  return harness;
}

/** The gRPC status of a rejected call (`code`, `details`), or fails the test if it resolved. */
export async function rpcError(promise: Promise<unknown>): Promise<{ code: number; details: string }> {
  try {
    await promise;
  } catch (err) {
    const e = err as { code?: number; details?: string };
    return { code: e.code ?? -1, details: e.details ?? '' };
  }
  throw new Error('expected the call to fail, it succeeded');
}
