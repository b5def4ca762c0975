/**
 * The plugin's socket: `unix:///path/kms.sock` (or a bare absolute path), or a Linux abstract
 * socket `@name` (also `unix:///@name`, the form kube-apiserver's EncryptionConfiguration takes).
 * An abstract socket has no file to unlink and no file permissions: any process in the network
 * namespace can connect, so the filesystem form is the default in the manifests.
 */
export type ListenAddress = { kind: 'path'; path: string } | { kind: 'abstract'; name: string };

export function parseListenAddress(text: string): ListenAddress {
  const rest = text.startsWith('unix://') ? text.slice('unix://'.length) : text.startsWith('unix:') ? text.slice('unix:'.length) : text;
  const abstract = rest.startsWith('/@') ? rest.slice(2) : rest.startsWith('@') ? rest.slice(1) : undefined;
  if (abstract !== undefined) {
    if (!/^[-A-Za-z0-9_.]{1,100}$/.test(abstract)) throw new Error(`--listen ${JSON.stringify(text)}: an abstract socket name is 1-100 letters, digits, '-', '_' or '.'`);
    return { kind: 'abstract', name: abstract };
  }
  if (!rest.startsWith('/') || rest.includes('\0')) throw new Error(`--listen ${JSON.stringify(text)} must be unix:///absolute/path or @abstract-name`);
  return { kind: 'path', path: rest };
}

/** The address grpc-js binds and dials (`unix:<path>`; abstract names start with a NUL byte). */
export function grpcAddressOf(address: ListenAddress): string {
  return address.kind === 'path' ? `unix:${address.path}` : `unix:\0${address.name}`;
}

/** The address as kube-apiserver's EncryptionConfiguration writes it. */
export function describeListenAddress(address: ListenAddress): string {
  return address.kind === 'path' ? `unix://${address.path}` : `unix:///@${address.name}`;
}
