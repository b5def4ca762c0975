import * as grpc from '@grpc/grpc-js';
import type { DecryptResponse__Output } from '../generated/kms/v2/DecryptResponse.js';
import type { EncryptResponse__Output } from '../generated/kms/v2/EncryptResponse.js';
import type { StatusResponse__Output } from '../generated/kms/v2/StatusResponse.js';
import { grpcAddressOf, parseListenAddress } from './listen-address.js';
import { loadKmsProto } from './proto.js';
import type { KeyManagementServiceClient } from './proto.js';

/**
 * A KMS v2 client over the plugin's socket, as kube-apiserver calls it (3 s deadline per call):
 * for tests, the demo and the benchmark. Errors are grpc-js ServiceErrors (code, details).
 */
export class KmsClient {
  private readonly client: KeyManagementServiceClient;

  constructor(
    endpoint: string,
    private readonly timeoutMs = 3000,
  ) {
    const proto = loadKmsProto();
    this.client = new proto.v2.KeyManagementService(grpcAddressOf(parseListenAddress(endpoint)), grpc.credentials.createInsecure());
  }

  status(): Promise<StatusResponse__Output> {
    return new Promise((resolve, reject) => this.client.Status({}, this.options(), (err, res) => (err || !res ? reject(err) : resolve(res))));
  }

  encrypt(plaintext: Buffer, uid = ''): Promise<EncryptResponse__Output> {
    return new Promise((resolve, reject) => this.client.Encrypt({ plaintext, uid }, this.options(), (err, res) => (err || !res ? reject(err) : resolve(res))));
  }

  decrypt(request: { ciphertext: Buffer; keyId: string; annotations: Record<string, Buffer>; uid?: string }): Promise<DecryptResponse__Output> {
    return new Promise((resolve, reject) => this.client.Decrypt({ ...request, uid: request.uid ?? '' }, this.options(), (err, res) => (err || !res ? reject(err) : resolve(res))));
  }

  close(): void {
    this.client.close();
  }

  private options(): grpc.CallOptions {
    return { deadline: Date.now() + this.timeoutMs };
  }
}
