import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ClientSecretCredential } from '@azure/identity';
import { KeyClient } from '@azure/keyvault-keys';
import { ApiServerEmulator } from '../devvault/kms-apiserver.js';
import { parseSeed } from '../devvault/seed.js';
import { startDevVault } from '../devvault/server.js';
import { ANNOTATION_KEY_ID } from '../kms/envelope.js';
import { KmsClient } from '../kms/kms-client.js';
import { buildKmsConfig } from '../kms/kms-config.js';
import { startKmsPlugin } from '../kms/plugin-server.js';
import { createLogger } from '../log.js';

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
 * it, a key rotation in Key Vault, and the old Secret still readable by a fresh apiserver.
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
  } finally {
    kms?.close();
    await plugin?.stop(1000);
    await vault.close();
    await rm(work, { recursive: true, force: true });
  }
}

function versionIn(kid: Buffer | undefined): string {
  return kid?.toString().split('/').pop() ?? '?';
}
