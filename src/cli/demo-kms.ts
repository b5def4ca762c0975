import { constants } from 'node:fs';
import { access, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { ClientSecretCredential } from '@azure/identity';
import { KeyClient } from '@azure/keyvault-keys';
import { Etcd3 } from 'etcd3';
import { startEtcd } from '../devvault/etcd-process.js';
import { ApiServerEmulator, storedBytes } from '../devvault/kms-apiserver.js';
import type { StoredObject } from '../devvault/kms-apiserver.js';
import { parseSeed } from '../devvault/seed.js';
import { startDevVault } from '../devvault/server.js';
import { ANNOTATION_KEY_ID } from '../kms/envelope.js';
import { KmsClient } from '../kms/kms-client.js';
import { buildKmsConfig } from '../kms/kms-config.js';
import { startKmsPlugin } from '../kms/plugin-server.js';
import { createLogger } from '../log.js';
import { parseAuditOptions } from '../etcd-audit/audit-options.js';
import { renderTable } from '../etcd-audit/render-report.js';
import { ProgressLine } from '../etcd-audit/progress-line.js';
import { runAudit } from '../etcd-audit/run-audit.js';

/** Made-up demo identities: a plugin allowed to wrap and unwrap only, and a key administrator. */
const DEMO_KMS_SEED = `
clients:
  - clientId: demo-kms-plugin
    clientSecret: demo-kms-plugin-secret
    read: []
    crypto: [{ role: crypto-service-encryption-user, keys: ["etcd-kek"] }]
  - clientId: demo-key-admin
    clientSecret: demo-key-admin-secret
    crypto: [{ role: crypto-officer, keys: ["etcd-kek"] }]
keys:
  - name: etcd-kek
`;

/**
 * `podvault demo --kms`: the KMS plugin on a socket, an "apiserver" encrypting a Secret through
 * it, a key rotation in Key Vault, and the old Secret still readable by a fresh apiserver. With
 * an etcd binary on PATH it ends with `podvault etcd-audit --expect-key-id <new key_id>` over
 * both Secrets stored in a throwaway etcd, before and after the old one is rewritten.
 */
export async function runKmsDemo(say: (line: string) => void): Promise<void> {
  const work = await mkdtemp('/dev/shm/podvault-kms-demo-');
  const vault = await startDevVault({ seed: parseSeed(DEMO_KMS_SEED, 'kms demo seed') });
  let plugin: Awaited<ReturnType<typeof startKmsPlugin>> | undefined;
  let kms: KmsClient | undefined;
  try {
    say(`dev-vault        ${vault.url} (RSA key etcd-kek; the plugin's identity may only get, wrapKey and unwrapKey)`);
    await writeFile(join(work, 'ca.pem'), vault.caPem);
    await writeFile(join(work, 'azure.json'), JSON.stringify({ tenantId: vault.tenantId, aadClientId: 'demo-kms-plugin', aadClientSecret: 'demo-kms-plugin-secret' }), { mode: 0o600 });
    const config = await buildKmsConfig(
      { listen: `unix://${join(work, 'kms.sock')}`, keyId: `${vault.url}/keys/etcd-kek`, configFilePath: join(work, 'azure.json'), caFile: join(work, 'ca.pem'), authorityHost: vault.url, logLevel: 'warn' },
      {},
    );
    plugin = await startKmsPlugin(config, createLogger({ level: 'warn', destination: process.stderr }));
    kms = new KmsClient(plugin.endpoint);
    const status = await kms.status();
    say(`kms-plugin       ${plugin.endpoint}: Status version=${status.version} healthz=${status.healthz} key_id=${status.keyId.slice(0, 16)}…`);

    const apiserver = new ApiServerEmulator(kms);
    await apiserver.poll();
    const path = '/registry/secrets/default/db-creds';
    const secret = Buffer.from('{"password":"demo-password-123"}');
    const stored = await apiserver.write(secret, path);
    say(`apiserver        wrote ${path}: key_id ${stored.keyId.slice(0, 16)}…, wrapped seed ${stored.encryptedDekSource.length} bytes, key version ${versionIn(stored.annotations[ANNOTATION_KEY_ID])}`);

    const admin = new KeyClient(vault.url, new ClientSecretCredential(vault.tenantId, 'demo-key-admin', 'demo-key-admin-secret', { authorityHost: vault.url, disableInstanceDiscovery: true, tlsOptions: { ca: vault.caPem } }), {
      tlsOptions: { ca: vault.caPem },
      disableChallengeResourceVerification: true,
    });
    const rotated = await admin.rotateKey('etcd-kek');
    say(`key vault        rotated etcd-kek: new current version ${rotated.properties.version}`);
    await plugin.checkNow(); // what the next background round trip does (every --health-interval)
    const after = await kms.status();
    say(`kms-plugin       Status key_id=${after.keyId.slice(0, 16)}… (changed: ${String(after.keyId !== status.keyId)})`);
    await apiserver.poll();
    const newer = await apiserver.write(Buffer.from('{"token":"demo-token-456"}'), '/registry/secrets/default/api-token');
    say(`apiserver        new seed after the key_id change (${apiserver.encryptCalls} Encrypt calls); wrote api-token under key version ${versionIn(newer.annotations[ANNOTATION_KEY_ID])}`);

    const restarted = new ApiServerEmulator(kms);
    const back = await restarted.read(stored, path);
    say(`apiserver        restarted (no seed cache): read ${path} -> ${back.equals(secret) ? 'the same value, unwrapped with the old key version' : 'A DIFFERENT VALUE'}`);
    say(`dev-vault served ${JSON.stringify(vault.requests)}`);

    const etcdBin = await onPath('etcd');
    if (etcdBin) {
      await auditStep(say, etcdBin, after.keyId, [{ path, stored }, { path: '/registry/secrets/default/api-token', stored: newer }], async () => ({ path, stored: await apiserver.write(secret, path) }));
    } else {
      say('etcd-audit       skipped: no etcd on PATH (Debian: apt-get install etcd-server; then podvault demo --kms again, or see docs/etcd-audit.md)');
    }
  } finally {
    kms?.close();
    await plugin?.stop(1000);
    await vault.close();
    await rm(work, { recursive: true, force: true });
  }
}

interface Written {
  path: string;
  stored: StoredObject;
}

/**
 * The rotation's compliance gate: the Secrets stored in a throwaway etcd in kube-apiserver's
 * format, `podvault etcd-audit --expect-key-id <new key_id>` (exit 4, naming the Secret still under
 * the old key), the apiserver's rewrite of it, and the audit again (exit 0).
 */
async function auditStep(say: (line: string) => void, etcdBin: string, expectKeyId: string, objects: readonly Written[], rewrite: () => Promise<Written>): Promise<void> {
  const etcd = await startEtcd({ bin: etcdBin });
  const client = new Etcd3({ hosts: etcd.endpoint });
  try {
    const put = async (o: Written): Promise<void> => {
      await client.put(o.path).value(storedBytes(o.stored, 'podvault'));
    };
    for (const o of objects) await put(o);
    say(`etcd             ${etcd.endpoint} (${etcdBin}, temp dir): stored both Secrets as kube-apiserver does (k8s:enc:kms:v2:podvault:…)`);
    const audit = async (): Promise<string[]> => {
      const flags = { endpoints: etcd.endpoint, resources: 'secrets', prefix: '/registry', pageSize: '500', maxPageBytes: '16Mi', dialTimeout: '5s', commandTimeout: '30s', expectKeyId };
      const options = await parseAuditOptions(flags, false);
      const { tally, context } = await runAudit(options, new ProgressLine(undefined));
      return renderTable(tally, context).trimEnd().split('\n');
    };
    say(`etcd-audit       podvault etcd-audit --endpoints ${etcd.endpoint} --expect-key-id ${expectKeyId.slice(0, 16)}…`);
    for (const line of await audit()) say(`                 ${line}`.trimEnd());
    const rewritten = await rewrite();
    await put(rewritten);
    say(`apiserver        rewrote ${rewritten.path} (kubectl replace): now under the new key_id`);
    say(`etcd-audit       again: ${(await audit()).find((l) => l.startsWith('Result:')) ?? '?'}`);
  } finally {
    client.close();
    await etcd.stop();
  }
}

/** The first executable `name` in PATH's directories, or undefined. */
async function onPath(name: string): Promise<string | undefined> {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

function versionIn(kid: Buffer | undefined): string {
  return kid?.toString().split('/').pop() ?? '?';
}
