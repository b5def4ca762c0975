// Original file: proto/kms/v2/api.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { DecryptRequest as _v2_DecryptRequest, DecryptRequest__Output as _v2_DecryptRequest__Output } from '../v2/DecryptRequest.js';
import type { DecryptResponse as _v2_DecryptResponse, DecryptResponse__Output as _v2_DecryptResponse__Output } from '../v2/DecryptResponse.js';
import type { EncryptRequest as _v2_EncryptRequest, EncryptRequest__Output as _v2_EncryptRequest__Output } from '../v2/EncryptRequest.js';
import type { EncryptResponse as _v2_EncryptResponse, EncryptResponse__Output as _v2_EncryptResponse__Output } from '../v2/EncryptResponse.js';
import type { StatusRequest as _v2_StatusRequest, StatusRequest__Output as _v2_StatusRequest__Output } from '../v2/StatusRequest.js';
import type { StatusResponse as _v2_StatusResponse, StatusResponse__Output as _v2_StatusResponse__Output } from '../v2/StatusResponse.js';

export interface KeyManagementServiceClient extends grpc.Client {
  Decrypt(argument: _v2_DecryptRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_v2_DecryptResponse__Output>): grpc.ClientUnaryCall;
  Decrypt(argument: _v2_DecryptRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_v2_DecryptResponse__Output>): grpc.ClientUnaryCall;
  Decrypt(argument: _v2_DecryptRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_v2_DecryptResponse__Output>): grpc.ClientUnaryCall;
  Decrypt(argument: _v2_DecryptRequest, callback: grpc.requestCallback<_v2_DecryptResponse__Output>): grpc.ClientUnaryCall;
  decrypt(argument: _v2_DecryptRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_v2_DecryptResponse__Output>): grpc.ClientUnaryCall;
  decrypt(argument: _v2_DecryptRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_v2_DecryptResponse__Output>): grpc.ClientUnaryCall;
  decrypt(argument: _v2_DecryptRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_v2_DecryptResponse__Output>): grpc.ClientUnaryCall;
  decrypt(argument: _v2_DecryptRequest, callback: grpc.requestCallback<_v2_DecryptResponse__Output>): grpc.ClientUnaryCall;
  
  Encrypt(argument: _v2_EncryptRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_v2_EncryptResponse__Output>): grpc.ClientUnaryCall;
  Encrypt(argument: _v2_EncryptRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_v2_EncryptResponse__Output>): grpc.ClientUnaryCall;
  Encrypt(argument: _v2_EncryptRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_v2_EncryptResponse__Output>): grpc.ClientUnaryCall;
  Encrypt(argument: _v2_EncryptRequest, callback: grpc.requestCallback<_v2_EncryptResponse__Output>): grpc.ClientUnaryCall;
  encrypt(argument: _v2_EncryptRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_v2_EncryptResponse__Output>): grpc.ClientUnaryCall;
  encrypt(argument: _v2_EncryptRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_v2_EncryptResponse__Output>): grpc.ClientUnaryCall;
  encrypt(argument: _v2_EncryptRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_v2_EncryptResponse__Output>): grpc.ClientUnaryCall;
  encrypt(argument: _v2_EncryptRequest, callback: grpc.requestCallback<_v2_EncryptResponse__Output>): grpc.ClientUnaryCall;
  
  Status(argument: _v2_StatusRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_v2_StatusResponse__Output>): grpc.ClientUnaryCall;
  Status(argument: _v2_StatusRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_v2_StatusResponse__Output>): grpc.ClientUnaryCall;
  Status(argument: _v2_StatusRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_v2_StatusResponse__Output>): grpc.ClientUnaryCall;
  Status(argument: _v2_StatusRequest, callback: grpc.requestCallback<_v2_StatusResponse__Output>): grpc.ClientUnaryCall;
  status(argument: _v2_StatusRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_v2_StatusResponse__Output>): grpc.ClientUnaryCall;
  status(argument: _v2_StatusRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_v2_StatusResponse__Output>): grpc.ClientUnaryCall;
  status(argument: _v2_StatusRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_v2_StatusResponse__Output>): grpc.ClientUnaryCall;
  status(argument: _v2_StatusRequest, callback: grpc.requestCallback<_v2_StatusResponse__Output>): grpc.ClientUnaryCall;
  
}

export interface KeyManagementServiceHandlers extends grpc.UntypedServiceImplementation {
  Decrypt: grpc.handleUnaryCall<_v2_DecryptRequest__Output, _v2_DecryptResponse>;
  
  Encrypt: grpc.handleUnaryCall<_v2_EncryptRequest__Output, _v2_EncryptResponse>;
  
  Status: grpc.handleUnaryCall<_v2_StatusRequest__Output, _v2_StatusResponse>;
  
}

export interface KeyManagementServiceDefinition extends grpc.ServiceDefinition {
  Decrypt: MethodDefinition<_v2_DecryptRequest, _v2_DecryptResponse, _v2_DecryptRequest__Output, _v2_DecryptResponse__Output>
  Encrypt: MethodDefinition<_v2_EncryptRequest, _v2_EncryptResponse, _v2_EncryptRequest__Output, _v2_EncryptResponse__Output>
  Status: MethodDefinition<_v2_StatusRequest, _v2_StatusResponse, _v2_StatusRequest__Output, _v2_StatusResponse__Output>
}
