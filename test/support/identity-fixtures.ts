/** Identities, bindings and pods for the pod-identity tests: several kinds of AzureIdentity and the dev-vault clients behind them. */
import { generateKeyPairSync } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import jwt from 'jsonwebtoken';
import forge from 'node-forge';
import { createTestCa } from '../../src/devvault/test-ca.js';
import type { Harness } from './harness.js';

export const TEAM_A_VALUE = 'team-a-value-Qp3-never-log';
export const TEAM_B_VALUE = 'team-b-value-Wm9-never-log';
export const SP_A_SECRET = 'sp-a-secret-Hh2-never-log';
export const SP_B_SECRET = 'sp-b-secret-Jj5-never-log';
export const PFX_PASSWORD = 'pfx-pass-Ll8';
export const ISSUER = 'https://kubernetes.default.svc.cluster.local';

export const saKeys = generateKeyPairSync('rsa', { modulusLength: 2048 });

/** A projected service-account token as the kubelet gets it for a pod, signed by the cluster's key. */
export function podToken(audience: string, namespace: string, serviceAccount: string, pod: { name: string; uid: string }, expiresIn = 3600): string {
  return jwt.sign(
    { 'kubernetes.io': { namespace, serviceaccount: { name: serviceAccount, uid: 'sa-uid' }, pod: { name: pod.name, uid: pod.uid } } },
    saKeys.privateKey,
    { algorithm: 'RS256', keyid: 'test-key', audience, issuer: ISSUER, subject: `system:serviceaccount:${namespace}:${serviceAccount}`, expiresIn },
  );
}

const meta = (name: string, namespace = 'default', extra: Record<string, unknown> = {}) => ({ name, namespace, ...extra });
const pod = (name: string, uid: string, label: string | undefined, namespace = 'default', serviceAccountName = 'default') => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: meta(name, namespace, { uid, labels: label ? { aadpodidbinding: label } : {} }),
  spec: { serviceAccountName },
});
const identity = (name: string, spec: Record<string, unknown>, namespace = 'default') => ({ apiVersion: 'aadpodidentity.k8s.io/v1', kind: 'AzureIdentity', metadata: meta(name, namespace), spec });
const binding = (name: string, identityName: string, selector: string, extra: { namespace?: string; weight?: number; annotations?: Record<string, string> } = {}) => ({
  apiVersion: 'aadpodidentity.k8s.io/v1',
  kind: 'AzureIdentityBinding',
  metadata: meta(name, extra.namespace ?? 'default', extra.annotations ? { annotations: extra.annotations } : {}),
  spec: { azureIdentity: identityName, selector, ...(extra.weight !== undefined ? { weight: extra.weight } : {}) },
});
const secret = (name: string, data: Record<string, Buffer>, namespace = 'default') => ({
  apiVersion: 'v1',
  kind: 'Secret',
  metadata: meta(name, namespace),
  data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, v.toString('base64')])),
});

export async function setUp(h: Harness): Promise<void> {
  const store = h.vault.store;
  store.setSecret('team-a-secret', TEAM_A_VALUE);
  store.setSecret('team-b-secret', TEAM_B_VALUE);
  store.putClient({ clientId: 'sp-a', clientSecret: SP_A_SECRET, managedIdentity: false, read: ['team-a-*'] });
  store.putClient({ clientId: 'sp-b', clientSecret: SP_B_SECRET, managedIdentity: false, read: ['team-b-*'] });
  store.putClient({ clientId: 'mi-a', managedIdentity: true, read: ['team-a-*'] });
  store.putClient({ clientId: 'wi-a', managedIdentity: false, federated: { issuer: ISSUER, subject: 'system:serviceaccount:default:wi-sa', publicKeyPem: saKeys.publicKey.export({ type: 'spki', format: 'pem' }).toString() }, read: ['team-a-*'] });

  const cert = createTestCa('client CA').issueServerCert(['sp-cert'], []);
  store.putClient({ clientId: 'sp-cert', certificatePem: cert.certPem, managedIdentity: false, read: ['team-a-*'] });
  const p12 = forge.pkcs12.toPkcs12Asn1(forge.pki.privateKeyFromPem(cert.keyPem), [forge.pki.certificateFromPem(cert.certPem)], PFX_PASSWORD, { algorithm: '3des' });
  const pfx = Buffer.from(forge.asn1.toDer(p12).getBytes(), 'binary');

  const tenantID = h.vault.tenantId;
  await h.writeObjects('identities.yaml', [
    secret('sp-a-secret', { clientSecret: Buffer.from(SP_A_SECRET) }),
    secret('sp-b-secret', { clientSecret: Buffer.from(SP_B_SECRET) }),
    secret('sp-cert-secret', { certificate: pfx, password: Buffer.from(PFX_PASSWORD) }),
    identity('id-a', { type: 1, tenantID, clientID: 'sp-a', clientPassword: { name: 'sp-a-secret', namespace: 'default' } }),
    identity('id-b', { type: 1, tenantID, clientID: 'sp-b', clientPassword: { name: 'sp-b-secret', namespace: 'default' } }),
    identity('id-cert', { type: 2, tenantID, clientID: 'sp-cert', clientPassword: { name: 'sp-cert-secret', namespace: 'default' } }),
    identity('id-mi', { type: 0, clientID: 'mi-a' }),
    binding('bind-a', 'id-a', 'team-a'),
    binding('bind-b', 'id-b', 'team-b'),
    binding('bind-cert', 'id-cert', 'team-cert'),
    binding('bind-mi', 'id-mi', 'team-mi'),
    binding('bind-heavy', 'id-a', 'weighted', { weight: 10 }),
    binding('bind-light', 'id-b', 'weighted', { weight: 1 }),
    binding('bind-narrow', 'id-a', 'narrow', { annotations: { 'podvault.dev/allowed-service-accounts': 'web', 'podvault.dev/allowed-objects': '127/team-a-secret' } }),
    identity('id-other-ns', { type: 1, tenantID, clientID: 'sp-a', clientPassword: { name: 'sp-a-secret', namespace: 'team-x' } }, 'team-x'),
    binding('bind-other-ns', 'id-other-ns', 'foreign', { namespace: 'team-x' }),
    secret('sp-a-secret', { clientSecret: Buffer.from(SP_A_SECRET) }, 'team-x'),
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta('wi-sa', 'default', { annotations: { 'azure.workload.identity/client-id': 'wi-a' } }) },
  ]);
  await h.writeClass('team-a', { ...h.vaultParameters([{ objectName: 'team-a-secret' }]), usePodIdentity: 'true' });
  await h.writeClass('team-b', { ...h.vaultParameters([{ objectName: 'team-b-secret' }]), usePodIdentity: 'true' });
  await h.writeClass('native', h.vaultParameters([{ objectName: 'team-a-secret' }]));
  await h.writeClass('both', { ...h.vaultParameters([{ objectName: 'team-a-secret' }, { objectName: 'db-user' }]), usePodIdentity: 'true' });
  await h.writeClass('node', { ...h.vaultParameters([{ objectName: 'team-a-secret' }]), useVMManagedIdentity: 'true', userAssignedIdentityID: 'mi-a' });
}

/** Publish for a pod described in the standalone directory; returns the file's text or the error. */
export async function publishAs(h: Harness, podName: string, className: string, opts: { label?: string; namespace?: string; serviceAccount?: string; tokens?: Record<string, string> } = {}): Promise<{ text?: string; code?: number; details?: string }> {
  const uid = `uid-${podName}-${Math.random().toString(16).slice(2, 10)}`;
  const namespace = opts.namespace ?? 'default';
  const serviceAccount = opts.serviceAccount ?? 'default';
  await h.writeObjects(`pod-${podName}.yaml`, [pod(podName, uid, opts.label, namespace, serviceAccount)]);
  const v = await h.volume({ pod: podName, namespace, uid, serviceAccount, className, secrets: {}, ...(opts.tokens ? { tokens: opts.tokens } : {}) });
  try {
    await h.client.publish(v.request);
  } catch (err) {
    const e = err as { code: number; details: string };
    return { code: e.code, details: e.details };
  }
  const file = className === 'team-b' ? 'team-b-secret' : 'team-a-secret';
  const text = await readFile(join(v.targetPath, file), 'utf8');
  await h.client.unpublish({ volumeId: v.volumeId, targetPath: v.targetPath });
  return { text };
}

