import { Command, Option } from 'commander';
import {
  buildDriverConfig,
  DEFAULT_DRIVER_NAME,
  DEFAULT_ENDPOINT,
  DEFAULT_FETCH_CONCURRENCY,
  DEFAULT_KUBELET_DIR,
  DEFAULT_MAX_CLASS_OBJECTS,
  DEFAULT_MAX_CLASS_SIZE,
  DEFAULT_MAX_CONCURRENT_PUBLISHES,
  DEFAULT_MAX_OBJECT_SIZE,
  DEFAULT_MAX_NODE_VOLUME_SIZE,
  DEFAULT_MAX_QUEUED_PUBLISHES,
  DEFAULT_VAULT_MAX_RETRY_AFTER,
  DEFAULT_PUBLISH_DEADLINE,
  DEFAULT_ROTATION_INTERVAL,
  DEFAULT_TMPFS_SIZE,
  DEFAULT_VAULT_MAX_ATTEMPTS,
  DEFAULT_VAULT_MAX_IN_FLIGHT,
  DEFAULT_VAULT_REQUEST_TIMEOUT,
} from '../config/driver-config.js';
import type { DriverFlags } from '../config/driver-config.js';
import { DEFAULT_PKCS12_MAX_ITERATIONS, DEFAULT_PKCS12_TIME_LIMIT } from '../untrusted/pkcs12-converter.js';

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

export function driverCommand(): Command {
  return new Command('driver')
    .description('serve the CSI Identity and Node services on a unix socket (the DaemonSet\'s container command)')
    .option('--endpoint <uri>', `CSI endpoint, unix:///path (env CSI_ENDPOINT; default ${DEFAULT_ENDPOINT})`)
    .option('--node-id <id>', 'node id reported to the kubelet (env NODE_NAME; the host name in standalone mode)')
    .option('--driver-name <name>', `CSI driver name (default ${DEFAULT_DRIVER_NAME})`)
    .option('--kubelet-dir <dir>', `kubelet root; target paths must lie below it (default ${DEFAULT_KUBELET_DIR})`)
    .option('--tmpfs-size <size>', `limit of one volume's contents, each file rounded up to 4 KiB (its tmpfs gets twice that, so a rotation fits), e.g. 4Mi (default ${DEFAULT_TMPFS_SIZE})`)
    .option('--mount-utility', 'mount and unmount with mount(8)/umount(8) processes instead of podvault\'s in-process mount(2) addon (which is used when it loads)')
    .option('--standalone <dir>', 'read SecretProviderClass objects from the YAML files of <dir> instead of the Kubernetes API')
    .option('--kubeconfig <file>', 'kubeconfig for the Kubernetes API (default: in-cluster config)')
    .option('--ca-file <file>', 'extra PEM CA bundle trusted for Entra ID and Key Vault (private CA, dev-vault)')
    .option('--authority-host <url>', 'Entra ID authority host overriding the cloud\'s, https://host[:port]')
    .option('--allow-vault-uri <url>', 'allow classes to name this vault origin with vaultUri (repeatable)', collect)
    .option('--allow-cloud-env-file <file>', 'allow classes with cloudName AzureStackCloud to name this cloud environment JSON file with cloudEnvFileName (absolute path, repeatable)', collect)
    .option('--fetch-concurrency <n>', `objects of one publish fetched at once (default ${DEFAULT_FETCH_CONCURRENCY})`)
    .option('--cluster-wide-bindings', 'honour AzureIdentityBindings and AzureIdentities of other namespaces than the pod\'s (off: a label cannot reach across namespaces)')
    .option('--allow-node-identity', 'allow classes to use the node\'s managed identity (useVMManagedIdentity), which every pod on the node would share')
    .option('--allow-managed-identity <namespace=id>', 'let pods of <namespace> (* for any) use this user-assigned managed identity (client or resource id) through a type 0 AzureIdentity (repeatable; none by default)', collect)
    .option('--node-managed-identity <id>', 'a managed identity of the node itself (VM, kubelet): refused to AzureIdentities without --allow-node-identity, whatever --allow-managed-identity says (repeatable)', collect)
    .option('--imds-endpoint <url>', 'IMDS base URL for managed identities (default: the Azure instance metadata service)')
    .option('--require-pod-token', 'refuse a publish without a valid service-account token for --pod-token-audience naming the volume\'s pod')
    .option('--pod-token-audience <aud>', 'audience of the pod token podvault verifies (CSIDriver tokenRequests; default: the driver name)')
    .option('--service-account-jwks <file>', 'standalone mode: JWKS of the cluster\'s service-account tokens (what /openid/v1/jwks serves)')
    .option('--service-account-issuer <url>', 'standalone mode: issuer of the cluster\'s service-account tokens')
    .option('--vault-request-timeout <duration>', `each vault request is abandoned and retried after this long (default ${DEFAULT_VAULT_REQUEST_TIMEOUT})`)
    .option('--vault-max-attempts <n>', `attempts per vault request on 429, 5xx, resets and timeouts (default ${DEFAULT_VAULT_MAX_ATTEMPTS})`)
    .option('--vault-max-in-flight <n>', `vault requests in flight to one vault host, node-wide (default ${DEFAULT_VAULT_MAX_IN_FLIGHT})`)
    .option('--publish-deadline <duration>', `a publish gives up after this long (default ${DEFAULT_PUBLISH_DEADLINE}; the kubelet waits 2m)`)
    .option('--rotation-interval <duration>', `refetch a mounted volume when its files are older than this, on the kubelet's republish or the driver's own timer (default ${DEFAULT_ROTATION_INTERVAL})`)
    .option('--state-dir <dir>', 'keep the non-secret facts of each volume here, to rotate and unpublish after a restart (the DaemonSet uses /var/run/podvault)')
    // Memory bounds: each refusal names its flag.
    .option('--max-class-size <size>', `largest spec.parameters of a class, checked before parsing (default ${DEFAULT_MAX_CLASS_SIZE})`)
    .option('--max-class-objects <n>', `most objects one class may list, objectVersionHistory expanded (default ${DEFAULT_MAX_CLASS_OBJECTS})`)
    .option('--max-object-size <size>', `largest vault object accepted (default ${DEFAULT_MAX_OBJECT_SIZE}; Key Vault secrets are at most 25 KB)`)
    .option('--max-node-volume-size <size>', `contents of all of the node's volumes together, counted as --tmpfs-size is; their tmpfs pages are charged to the driver's memory (default ${DEFAULT_MAX_NODE_VOLUME_SIZE})`)
    .option('--max-concurrent-publishes <n>', `publishes holding fetched data at once, each up to --tmpfs-size (default ${DEFAULT_MAX_CONCURRENT_PUBLISHES})`)
    .option('--max-queued-publishes <n>', `publishes waiting for one of those slots; more are answered RESOURCE_EXHAUSTED (default ${DEFAULT_MAX_QUEUED_PUBLISHES})`)
    .option('--vault-max-retry-after <duration>', `ceiling of a Key Vault Retry-After wait and of the host-wide pause it causes (default ${DEFAULT_VAULT_MAX_RETRY_AFTER})`)
    .option('--metrics-addr <host:port>', 'serve Prometheus metrics on /metrics and probes on /healthz and /readyz (off when absent)')
    .option('--pkcs12-max-iterations <n>', `refuse a PKCS#12 bundle whose MAC or key derivation asks for more iterations (default ${DEFAULT_PKCS12_MAX_ITERATIONS})`)
    .option('--pkcs12-time-limit <duration>', `refuse a PKCS#12 bundle not opened within this long; its worker thread is replaced (default ${DEFAULT_PKCS12_TIME_LIMIT})`)
    .option('--azure-token-proxy <url>', 'the node\'s AKS token proxy for useAzureTokenProxy classes (identity binding), https://host[/path] (env AZURE_KUBERNETES_TOKEN_PROXY; off when absent)')
    .option('--azure-token-proxy-ca-file <file>', 'PEM CA bundle the token proxy is verified against, re-read when it changes (env AZURE_KUBERNETES_CA_FILE; default: --ca-file, else the system roots)')
    .option('--azure-token-proxy-sni-name <name>', 'TLS server name presented to the token proxy and checked in its certificate (env AZURE_KUBERNETES_SNI_NAME)')
    // The Azure provider's flags, same names, meanings and defaults; a class's parameters
    // writeCertAndKeyInSeparateFiles / constructPEMChain override them for that class.
    .option('--write-cert-and-key-in-separate-files [bool]', 'also write <file>.crt (certificates) and <file>.key (private key) beside the combined file of a certificate-backed secret in PEM (default false)')
    .option('--construct-pem-chain [bool]', 'order the certificates of a PKCS#12 certificate-backed secret leaf, intermediates, root; false keeps the bundle\'s order (default true)')
    .option('--version-watch [bool]', 'use the cluster\'s version watch (podvault version-watch): rotations fetch only the objects whose published version moved, and volumes rotate when one does; without fresh published versions they refetch as without it (default false)')
    .option('--version-watch-namespace <ns>', 'namespace of the VaultObjectVersions the version watch writes (default podvault)')
    .addOption(new Option('--log-level <level>', 'log level').choices(['trace', 'debug', 'info', 'warn', 'error']).default('info'))
    .action(async (flags: DriverFlags) => {
      const config = buildDriverConfig(flags, process.env);
      const [{ startDriver }, { createLogger }] = await Promise.all([import('../driver/server.js'), import('../log.js')]);
      const log = createLogger({ level: config.logLevel });
      const driver = await startDriver({ config, log });
      await new Promise<void>((resolve) => {
        const stop = (signal: string): void => {
          log.info({ signal }, 'stopping');
          driver.stop().then(resolve, resolve);
        };
        process.once('SIGTERM', () => stop('SIGTERM'));
        process.once('SIGINT', () => stop('SIGINT'));
      });
    });
}
