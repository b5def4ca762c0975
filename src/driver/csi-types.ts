/**
 * Typed access to the generated CSI messages, so the rest of the driver imports names from one
 * place rather than from the generator's folder layout.
 */
export type { NodePublishVolumeRequest__Output as NodePublishVolumeRequest } from '../generated/csi/csi/v1/NodePublishVolumeRequest.js';
export type { NodeUnpublishVolumeRequest__Output as NodeUnpublishVolumeRequest } from '../generated/csi/csi/v1/NodeUnpublishVolumeRequest.js';
export type { NodeGetCapabilitiesResponse } from '../generated/csi/csi/v1/NodeGetCapabilitiesResponse.js';
export type { NodeGetInfoResponse } from '../generated/csi/csi/v1/NodeGetInfoResponse.js';
export type { GetPluginInfoResponse } from '../generated/csi/csi/v1/GetPluginInfoResponse.js';
export type { GetPluginCapabilitiesResponse } from '../generated/csi/csi/v1/GetPluginCapabilitiesResponse.js';
export type { ProbeResponse } from '../generated/csi/csi/v1/ProbeResponse.js';
export type { ProtoGrpcType as CsiProto } from '../generated/csi/csi.js';
export type { NodeClient } from '../generated/csi/csi/v1/Node.js';
export type { IdentityClient } from '../generated/csi/csi/v1/Identity.js';
