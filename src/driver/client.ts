import * as grpc from '@grpc/grpc-js';
import type { NodePublishVolumeRequest as PublishIn } from '../generated/csi/csi/v1/NodePublishVolumeRequest.js';
import type { NodeUnpublishVolumeRequest as UnpublishIn } from '../generated/csi/csi/v1/NodeUnpublishVolumeRequest.js';
import type { GetPluginInfoResponse__Output } from '../generated/csi/csi/v1/GetPluginInfoResponse.js';
import type { NodeGetInfoResponse__Output } from '../generated/csi/csi/v1/NodeGetInfoResponse.js';
import type { ProbeResponse__Output } from '../generated/csi/csi/v1/ProbeResponse.js';
import type { IdentityClient, NodeClient } from './csi-types.js';
import { loadCsiProto } from './proto.js';
import { socketPathOf } from './socket.js';

export type PublishArgs = PublishIn;
export type UnpublishArgs = UnpublishIn;

/**
 * A CSI client over a unix socket, as the kubelet (or the FlexVolume shim, the demo, the tests and
 * the benchmark) talks to the driver. Calls reject with the grpc-js ServiceError (`code`, `details`).
 */
export class CsiClient {
  readonly node: NodeClient;
  readonly identity: IdentityClient;

  constructor(endpoint: string) {
    const proto = loadCsiProto();
    const address = `unix://${socketPathOf(endpoint)}`;
    const credentials = grpc.credentials.createInsecure();
    this.node = new proto.csi.v1.Node(address, credentials);
    this.identity = new proto.csi.v1.Identity(address, credentials, { channelOverride: this.node.getChannel() } as grpc.ClientOptions);
  }

  publish(request: PublishArgs, deadlineMs = 120_000): Promise<void> {
    return new Promise((resolve, reject) => {
      this.node.NodePublishVolume(request, { deadline: Date.now() + deadlineMs }, (err) => (err ? reject(err) : resolve()));
    });
  }

  unpublish(request: UnpublishArgs, deadlineMs = 120_000): Promise<void> {
    return new Promise((resolve, reject) => {
      this.node.NodeUnpublishVolume(request, { deadline: Date.now() + deadlineMs }, (err) => (err ? reject(err) : resolve()));
    });
  }

  nodeGetInfo(): Promise<NodeGetInfoResponse__Output> {
    return new Promise((resolve, reject) => {
      this.node.NodeGetInfo({}, (err, res) => (err || !res ? reject(err ?? new Error('empty response')) : resolve(res)));
    });
  }

  pluginInfo(): Promise<GetPluginInfoResponse__Output> {
    return new Promise((resolve, reject) => {
      this.identity.GetPluginInfo({}, (err, res) => (err || !res ? reject(err ?? new Error('empty response')) : resolve(res)));
    });
  }

  probe(): Promise<ProbeResponse__Output> {
    return new Promise((resolve, reject) => {
      this.identity.Probe({}, (err, res) => (err || !res ? reject(err ?? new Error('empty response')) : resolve(res)));
    });
  }

  close(): void {
    this.node.close();
    this.identity.close();
  }
}
