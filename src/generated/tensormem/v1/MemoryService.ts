// Original file: proto/tensormem/v1/memory.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { GetConfigRequest as _tensormem_v1_GetConfigRequest, GetConfigRequest__Output as _tensormem_v1_GetConfigRequest__Output } from '../../tensormem/v1/GetConfigRequest';
import type { GetConfigResponse as _tensormem_v1_GetConfigResponse, GetConfigResponse__Output as _tensormem_v1_GetConfigResponse__Output } from '../../tensormem/v1/GetConfigResponse';
import type { GetMemoryInfoRequest as _tensormem_v1_GetMemoryInfoRequest, GetMemoryInfoRequest__Output as _tensormem_v1_GetMemoryInfoRequest__Output } from '../../tensormem/v1/GetMemoryInfoRequest';
import type { GetMemoryInfoResponse as _tensormem_v1_GetMemoryInfoResponse, GetMemoryInfoResponse__Output as _tensormem_v1_GetMemoryInfoResponse__Output } from '../../tensormem/v1/GetMemoryInfoResponse';
import type { GetMemorySnapshotRequest as _tensormem_v1_GetMemorySnapshotRequest, GetMemorySnapshotRequest__Output as _tensormem_v1_GetMemorySnapshotRequest__Output } from '../../tensormem/v1/GetMemorySnapshotRequest';
import type { GetMemorySnapshotResponse as _tensormem_v1_GetMemorySnapshotResponse, GetMemorySnapshotResponse__Output as _tensormem_v1_GetMemorySnapshotResponse__Output } from '../../tensormem/v1/GetMemorySnapshotResponse';
import type { WatchMemoryRequest as _tensormem_v1_WatchMemoryRequest, WatchMemoryRequest__Output as _tensormem_v1_WatchMemoryRequest__Output } from '../../tensormem/v1/WatchMemoryRequest';
import type { WatchMemoryResponse as _tensormem_v1_WatchMemoryResponse, WatchMemoryResponse__Output as _tensormem_v1_WatchMemoryResponse__Output } from '../../tensormem/v1/WatchMemoryResponse';

export interface MemoryServiceClient extends grpc.Client {
  GetConfig(argument: _tensormem_v1_GetConfigRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_GetConfigResponse__Output>): grpc.ClientUnaryCall;
  GetConfig(argument: _tensormem_v1_GetConfigRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tensormem_v1_GetConfigResponse__Output>): grpc.ClientUnaryCall;
  GetConfig(argument: _tensormem_v1_GetConfigRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_GetConfigResponse__Output>): grpc.ClientUnaryCall;
  GetConfig(argument: _tensormem_v1_GetConfigRequest, callback: grpc.requestCallback<_tensormem_v1_GetConfigResponse__Output>): grpc.ClientUnaryCall;
  getConfig(argument: _tensormem_v1_GetConfigRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_GetConfigResponse__Output>): grpc.ClientUnaryCall;
  getConfig(argument: _tensormem_v1_GetConfigRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tensormem_v1_GetConfigResponse__Output>): grpc.ClientUnaryCall;
  getConfig(argument: _tensormem_v1_GetConfigRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_GetConfigResponse__Output>): grpc.ClientUnaryCall;
  getConfig(argument: _tensormem_v1_GetConfigRequest, callback: grpc.requestCallback<_tensormem_v1_GetConfigResponse__Output>): grpc.ClientUnaryCall;
  
  GetMemoryInfo(argument: _tensormem_v1_GetMemoryInfoRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_GetMemoryInfoResponse__Output>): grpc.ClientUnaryCall;
  GetMemoryInfo(argument: _tensormem_v1_GetMemoryInfoRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tensormem_v1_GetMemoryInfoResponse__Output>): grpc.ClientUnaryCall;
  GetMemoryInfo(argument: _tensormem_v1_GetMemoryInfoRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_GetMemoryInfoResponse__Output>): grpc.ClientUnaryCall;
  GetMemoryInfo(argument: _tensormem_v1_GetMemoryInfoRequest, callback: grpc.requestCallback<_tensormem_v1_GetMemoryInfoResponse__Output>): grpc.ClientUnaryCall;
  getMemoryInfo(argument: _tensormem_v1_GetMemoryInfoRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_GetMemoryInfoResponse__Output>): grpc.ClientUnaryCall;
  getMemoryInfo(argument: _tensormem_v1_GetMemoryInfoRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tensormem_v1_GetMemoryInfoResponse__Output>): grpc.ClientUnaryCall;
  getMemoryInfo(argument: _tensormem_v1_GetMemoryInfoRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_GetMemoryInfoResponse__Output>): grpc.ClientUnaryCall;
  getMemoryInfo(argument: _tensormem_v1_GetMemoryInfoRequest, callback: grpc.requestCallback<_tensormem_v1_GetMemoryInfoResponse__Output>): grpc.ClientUnaryCall;
  
  GetMemorySnapshot(argument: _tensormem_v1_GetMemorySnapshotRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_GetMemorySnapshotResponse__Output>): grpc.ClientUnaryCall;
  GetMemorySnapshot(argument: _tensormem_v1_GetMemorySnapshotRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tensormem_v1_GetMemorySnapshotResponse__Output>): grpc.ClientUnaryCall;
  GetMemorySnapshot(argument: _tensormem_v1_GetMemorySnapshotRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_GetMemorySnapshotResponse__Output>): grpc.ClientUnaryCall;
  GetMemorySnapshot(argument: _tensormem_v1_GetMemorySnapshotRequest, callback: grpc.requestCallback<_tensormem_v1_GetMemorySnapshotResponse__Output>): grpc.ClientUnaryCall;
  getMemorySnapshot(argument: _tensormem_v1_GetMemorySnapshotRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_GetMemorySnapshotResponse__Output>): grpc.ClientUnaryCall;
  getMemorySnapshot(argument: _tensormem_v1_GetMemorySnapshotRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tensormem_v1_GetMemorySnapshotResponse__Output>): grpc.ClientUnaryCall;
  getMemorySnapshot(argument: _tensormem_v1_GetMemorySnapshotRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_GetMemorySnapshotResponse__Output>): grpc.ClientUnaryCall;
  getMemorySnapshot(argument: _tensormem_v1_GetMemorySnapshotRequest, callback: grpc.requestCallback<_tensormem_v1_GetMemorySnapshotResponse__Output>): grpc.ClientUnaryCall;
  
  WatchMemory(argument: _tensormem_v1_WatchMemoryRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_tensormem_v1_WatchMemoryResponse__Output>;
  WatchMemory(argument: _tensormem_v1_WatchMemoryRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_tensormem_v1_WatchMemoryResponse__Output>;
  watchMemory(argument: _tensormem_v1_WatchMemoryRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_tensormem_v1_WatchMemoryResponse__Output>;
  watchMemory(argument: _tensormem_v1_WatchMemoryRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_tensormem_v1_WatchMemoryResponse__Output>;
  
}

export interface MemoryServiceHandlers extends grpc.UntypedServiceImplementation {
  GetConfig: grpc.handleUnaryCall<_tensormem_v1_GetConfigRequest__Output, _tensormem_v1_GetConfigResponse>;
  
  GetMemoryInfo: grpc.handleUnaryCall<_tensormem_v1_GetMemoryInfoRequest__Output, _tensormem_v1_GetMemoryInfoResponse>;
  
  GetMemorySnapshot: grpc.handleUnaryCall<_tensormem_v1_GetMemorySnapshotRequest__Output, _tensormem_v1_GetMemorySnapshotResponse>;
  
  WatchMemory: grpc.handleServerStreamingCall<_tensormem_v1_WatchMemoryRequest__Output, _tensormem_v1_WatchMemoryResponse>;
  
}

export interface MemoryServiceDefinition extends grpc.ServiceDefinition {
  GetConfig: MethodDefinition<_tensormem_v1_GetConfigRequest, _tensormem_v1_GetConfigResponse, _tensormem_v1_GetConfigRequest__Output, _tensormem_v1_GetConfigResponse__Output>
  GetMemoryInfo: MethodDefinition<_tensormem_v1_GetMemoryInfoRequest, _tensormem_v1_GetMemoryInfoResponse, _tensormem_v1_GetMemoryInfoRequest__Output, _tensormem_v1_GetMemoryInfoResponse__Output>
  GetMemorySnapshot: MethodDefinition<_tensormem_v1_GetMemorySnapshotRequest, _tensormem_v1_GetMemorySnapshotResponse, _tensormem_v1_GetMemorySnapshotRequest__Output, _tensormem_v1_GetMemorySnapshotResponse__Output>
  WatchMemory: MethodDefinition<_tensormem_v1_WatchMemoryRequest, _tensormem_v1_WatchMemoryResponse, _tensormem_v1_WatchMemoryRequest__Output, _tensormem_v1_WatchMemoryResponse__Output>
}
