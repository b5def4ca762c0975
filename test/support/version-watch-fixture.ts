import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { startDevVault } from '../../src/devvault/server.js';
import type { DevVault } from '../../src/devvault/server.js';
import { parseSeed } from '../../src/devvault/seed.js';
import { KubeApiDouble } from '../../src/devvault/kube-api-double.js';
import type { KubeObject } from '../../src/devvault/kube-api-double.js';
import { VOV_API_VERSION, VOV_PLURAL, versionsObjectName, versionsStatusSchema } from '../../src/version-watch/versions-resource.js';
import type { VersionsStatus } from '../../src/version-watch/versions-resource.js';

export const WATCHER_CLIENT_ID = 'version-watch-reader';
export const WATCHER_SECRET = 'watcher-secret-never-on-argv-7f3a';
export const NAMESPACE = 'podvault';

export interface WatchFixture {
  vault: DevVault;
  api: KubeApiDouble;
  kubeconfig: string;
  work: string;
  /** The watcher's identity, for the child's environment. */
  env: Record<string, string>;
  /** Common flags: kubeconfig, namespace, dev-vault trust and authority, the vault allowed. */
  args(extra?: string[]): string[];
  putClass(namespace: string, name: string, objects: Array<Record<string, string>>, parameters?: Record<string, string>): void;
  /** The published status of the dev-vault's VaultObjectVersions, if any. */
  status(): VersionsStatus | undefined;
  /** The watcher's vault requests so far (dev-vault's log, by the client id its token named). */
  watcherRequests(): Array<{ at: number; path: string }>;
  close(): Promise<void>;
}

/** dev-vault with a metadata-only (Key Vault Reader) watcher identity, and the API double. */
export async function startWatchFixture(seedExtra: { secrets?: Array<{ name: string; value: string }> } = {}): Promise<WatchFixture> {
  const work = await mkdtemp(join(tmpdir(), 'podvault-vwatch-'));
  const seed = parseSeed(
    stringify({
      clients: [
        { clientId: WATCHER_CLIENT_ID, clientSecret: WATCHER_SECRET, keyVaultReader: true, read: [] },
        { clientId: 'app', clientSecret: 'app-secret', read: ['*'] },
      ],
      secrets: [
        { name: 'db-password', versions: [{ value: 'one' }, { value: 'two' }] },
        { name: 'api-token', value: 'tok' },
        { name: 'pinned-secret', value: 'pinned' },
        ...(seedExtra.secrets ?? []),
      ],
      keys: [{ name: 'signing', versions: 2 }],
      certificates: [{ name: 'tls' }],
    }),
    'version-watch fixture',
  );
  const vault = await startDevVault({ seed });
  const api = await new KubeApiDouble().start();
  const kubeconfig = await api.writeKubeconfig();
  await writeFile(join(work, 'ca.pem'), vault.caPem);
  const name = versionsObjectName(vault.url);
  return {
    vault,
    api,
    kubeconfig,
    work,
    env: { AZURE_TENANT_ID: vault.tenantId, AZURE_CLIENT_ID: WATCHER_CLIENT_ID, AZURE_CLIENT_SECRET: WATCHER_SECRET },
    args: (extra = []) => ['--kubeconfig', kubeconfig, '--namespace', NAMESPACE, '--ca-file', join(work, 'ca.pem'), '--authority-host', vault.url, '--allow-vault-uri', vault.url, ...extra],
    putClass: (namespace, className, objects, parameters = {}) => {
      const body: KubeObject = {
        apiVersion: 'secrets-store.csi.x-k8s.io/v1',
        kind: 'SecretProviderClass',
        metadata: { name: className, namespace },
        spec: { provider: 'azure', parameters: { vaultUri: vault.url, tenantId: vault.tenantId, objects: stringify({ array: objects.map((o) => stringify(o)) }), ...parameters } },
      };
      api.put('secretproviderclasses', body);
    },
    status: () => {
      const object = api.get(VOV_PLURAL, VOV_API_VERSION, NAMESPACE, name) as { status?: unknown } | undefined;
      return object?.status === undefined ? undefined : versionsStatusSchema.parse(object.status);
    },
    watcherRequests: () => vault.vaultLog.filter((r) => r.clientId === WATCHER_CLIENT_ID).map((r) => ({ at: r.at, path: r.path })),
    close: async () => {
      await api.close();
      await vault.close();
      await rm(work, { recursive: true, force: true });
    },
  };
}

/** Polls `probe` every 100 ms until it gives a value. */
export async function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await Promise.resolve(probe()).catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
