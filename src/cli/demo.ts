import { copyFile, lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import { buildDriverConfig } from '../config/driver-config.js';
import { startDevVault } from '../devvault/server.js';
import { devVaultDriverFlags } from '../devvault/driver-flags.js';
import { loadSeedFile } from '../devvault/seed.js';
import { CsiClient } from '../driver/client.js';
import { ephemeralVolume } from '../driver/kubelet-volume.js';
import { findMount } from '../driver/mountinfo.js';
import { ShmDirectoryMounter, TmpfsMounter } from '../driver/mounter.js';
import { startDriver } from '../driver/server.js';
import { createLogger } from '../log.js';
import { packageRoot } from '../package-info.js';
import { DEMO_SEED } from './dev-vault-command.js';
import { ClientSecretCredential } from '@azure/identity';
import { AZURE_CLOUDS } from '../providers/azure/clouds.js';
import { KeyVaultDataKeys, sealValues } from '../sealed/index.js';
import type { DevVault } from '../devvault/server.js';

const DEMO_DIR = join(packageRoot, 'examples', 'standalone');

/** The embedded default: everything the README's `npm run demo` shows, in one function. */
export async function runDemo(say: (line: string) => void): Promise<void> {
  const workDir = await mkdtemp('/dev/shm/podvault-demo-');
  const seed = await loadSeedFile(DEMO_SEED);
  const vault = await startDevVault({ seed });
  let driver: Awaited<ReturnType<typeof startDriver>> | undefined;
  let csi: CsiClient | undefined;
  try {
    say(`dev-vault        ${vault.url} (Key Vault data plane + Entra ID token endpoint, HTTPS with a throwaway CA)`);

    // The standalone directory: the example class (pointed at this dev-vault) and the pod's identity.
    const classDir = join(workDir, 'standalone');
    await mkdir(classDir);
    const doc = parseDocument(await readFile(join(DEMO_DIR, 'secretproviderclass.yaml'), 'utf8'));
    doc.setIn(['spec', 'parameters', 'vaultUri'], vault.url);
    doc.setIn(['spec', 'parameters', 'tenantId'], vault.tenantId);
    await writeFile(join(classDir, 'secretproviderclass.yaml'), doc.toString());
    await copyFile(join(DEMO_DIR, 'identity.yaml'), join(classDir, 'identity.yaml'));
    // The config file template: its SMTP password sealed now, as `podvault seal` would, with this
    // dev-vault's key (a marker names the vault and key version it was sealed with).
    const [marker = ''] = await sealDemoValues(vault, ['smtp-pw-Zr82-demo']);
    const template = await readFile(join(DEMO_DIR, 'configmap.yaml'), 'utf8');
    await writeFile(join(classDir, 'configmap.yaml'), template.replace('"SEALED_SMTP_PASSWORD"', `"${marker.replace(/\}\}$/, ' | yaml}}')}"`));
    say(`podvault seal    smtp password -> ${marker.slice(0, 24)}…}} (key ${vault.url}/keys/app-config), into the app-config ConfigMap`);
    const kubeletDir = join(workDir, 'kubelet');
    await mkdir(kubeletDir);
    const canMount = process.getuid?.() === 0;
    const mounter = canMount ? new TmpfsMounter() : new ShmDirectoryMounter();
    const config = buildDriverConfig({ ...(await devVaultDriverFlags(vault, workDir, { standalone: classDir, kubeletDir })), nodeId: 'demo-node' }, {});
    driver = await startDriver({ config, mounter, log: createLogger({ level: 'warn', destination: process.stderr }) });
    say(`driver           ${config.endpoint} (standalone: ${classDir})`);
    say(`storage          ${mounter.description}`);
    if (!canMount) say('                 not root: falling back to a directory under /dev/shm (a tmpfs) instead of a mount per volume');

    csi = new CsiClient(config.endpoint);
    const info = await csi.pluginInfo();
    const probe = await csi.probe();
    say(`plugin           ${info.name} ${info.vendorVersion}, ready=${String(probe.ready?.value)}`);

    // What the kubelet sends for a pod with an inline csi volume; no nodePublishSecretRef: the
    // pod's aadpodidbinding label and its AzureIdentityBinding decide the identity.
    const pod = { namespace: 'default', name: 'web-0', uid: '0b5c6a52-1c1e-4a8e-9f00-demo00000001', serviceAccount: 'web' };
    const volume = ephemeralVolume({
      kubeletDir,
      pod,
      volumeName: 'secrets-store',
      className: 'app-secrets',
    });
    await mkdir(join(volume.targetPath, '..'), { recursive: true, mode: 0o750 });

    const started = performance.now();
    await csi.publish(volume.request);
    const publishMs = performance.now() - started;
    say(`NodePublishVolume pod ${pod.namespace}/${pod.name}, class app-secrets, identity from binding app-identity-binding: OK in ${publishMs.toFixed(1)} ms`);
    const mount = await findMount(volume.targetPath);
    if (mount) say(`mount            ${mount.fsType} ${mount.source} on ${volume.targetPath} (${[...mount.mountOptions, ...mount.superOptions].join(',')})`);
    say(`files in        ${volume.targetPath}`);
    for (const line of await tree(volume.targetPath)) say(`  ${line}`);
    const shown = 'db-username';
    say(`cat ${shown}  -> ${(await readFile(join(volume.targetPath, shown), 'utf8'))}`);
    say('cat config/app.yaml  (objectType: template: the class\'s secrets and the sealed value, unwrapped as the pod)');
    for (const line of (await readFile(join(volume.targetPath, 'config', 'app.yaml'), 'utf8')).trimEnd().split('\n')) say(`  ${line}`);

    const again = performance.now();
    await csi.publish(volume.request);
    say(`republish        OK in ${(performance.now() - again).toFixed(1)} ms (idempotent: nothing changed, nothing rewritten)`);

    await csi.unpublish({ volumeId: volume.volumeId, targetPath: volume.targetPath });
    const gone = await lstat(volume.targetPath).then(() => false, () => true);
    say(`NodeUnpublishVolume: OK; target removed=${String(gone)}, still mounted=${String((await findMount(volume.targetPath)) !== undefined)}`);
    say(`dev-vault served ${JSON.stringify(vault.requests)}`);
  } finally {
    csi?.close();
    await driver?.stop(2000);
    await vault.close();
    await rm(workDir, { recursive: true, force: true });
  }
}

/** Seal values with the demo vault's `app-config` key as its sealer identity (examples/dev-vault.yaml). */
async function sealDemoValues(vault: DevVault, values: string[]): Promise<string[]> {
  const keys = new KeyVaultDataKeys({
    credential: new ClientSecretCredential(vault.tenantId, '0c2d3e4f-demo-4c1b-9d7e-sealer000001', 'demo-sealer-secret', { authorityHost: vault.url, disableInstanceDiscovery: true, tlsOptions: { ca: vault.caPem } }),
    settings: { caPem: vault.caPem, authorityHost: vault.url, allowedVaultOrigins: [vault.url], maxRetries: 0 },
    cloud: AZURE_CLOUDS[0] as (typeof AZURE_CLOUDS)[number],
    allowedOrigins: [vault.url],
    log: createLogger({ level: 'warn', destination: process.stderr }),
  });
  return (await sealValues(values, `${vault.url}/keys/app-config`, keys)).markers;
}

/** `ls -l`-like lines for the visible entries and what the links resolve to. */
async function tree(dir: string): Promise<string[]> {
  const lines: string[] = [];
  for (const entry of (await readdir(dir)).sort()) {
    const full = join(dir, entry);
    const st = await lstat(full);
    if (st.isSymbolicLink()) {
      lines.push(`${entry} -> ${await readlink(full)}`);
      continue;
    }
    lines.push(`${entry}/`);
    if (st.isDirectory() && entry.startsWith('..')) {
      const files = await readdir(full, { recursive: true, withFileTypes: true });
      for (const f of files.filter((e) => e.isFile())) {
        const path = join(f.parentPath, f.name);
        const fst = await lstat(path);
        lines.push(`  ${path.slice(full.length + 1)}  ${(fst.mode & 0o777).toString(8).padStart(4, '0')}  ${fst.size} bytes`);
      }
    }
  }
  return lines;
}
