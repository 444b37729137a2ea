import type * as grpc from '@grpc/grpc-js';
import type { MessageTypeDefinition } from '@grpc/proto-loader';

import type { Timestamp as _google_protobuf_Timestamp, Timestamp__Output as _google_protobuf_Timestamp__Output } from './google/protobuf/Timestamp';
import type { BlockSnapshot as _tensormem_v1_BlockSnapshot, BlockSnapshot__Output as _tensormem_v1_BlockSnapshot__Output } from './tensormem/v1/BlockSnapshot';
import type { ConfigValue as _tensormem_v1_ConfigValue, ConfigValue__Output as _tensormem_v1_ConfigValue__Output } from './tensormem/v1/ConfigValue';
import type { DevicePoolInfo as _tensormem_v1_DevicePoolInfo, DevicePoolInfo__Output as _tensormem_v1_DevicePoolInfo__Output } from './tensormem/v1/DevicePoolInfo';
import type { GetConfigRequest as _tensormem_v1_GetConfigRequest, GetConfigRequest__Output as _tensormem_v1_GetConfigRequest__Output } from './tensormem/v1/GetConfigRequest';
import type { GetConfigResponse as _tensormem_v1_GetConfigResponse, GetConfigResponse__Output as _tensormem_v1_GetConfigResponse__Output } from './tensormem/v1/GetConfigResponse';
import type { GetMemoryInfoRequest as _tensormem_v1_GetMemoryInfoRequest, GetMemoryInfoRequest__Output as _tensormem_v1_GetMemoryInfoRequest__Output } from './tensormem/v1/GetMemoryInfoRequest';
import type { GetMemoryInfoResponse as _tensormem_v1_GetMemoryInfoResponse, GetMemoryInfoResponse__Output as _tensormem_v1_GetMemoryInfoResponse__Output } from './tensormem/v1/GetMemoryInfoResponse';
import type { GetMemorySnapshotRequest as _tensormem_v1_GetMemorySnapshotRequest, GetMemorySnapshotRequest__Output as _tensormem_v1_GetMemorySnapshotRequest__Output } from './tensormem/v1/GetMemorySnapshotRequest';
import type { GetMemorySnapshotResponse as _tensormem_v1_GetMemorySnapshotResponse, GetMemorySnapshotResponse__Output as _tensormem_v1_GetMemorySnapshotResponse__Output } from './tensormem/v1/GetMemorySnapshotResponse';
import type { HostPoolInfo as _tensormem_v1_HostPoolInfo, HostPoolInfo__Output as _tensormem_v1_HostPoolInfo__Output } from './tensormem/v1/HostPoolInfo';
import type { MemoryInfo as _tensormem_v1_MemoryInfo, MemoryInfo__Output as _tensormem_v1_MemoryInfo__Output } from './tensormem/v1/MemoryInfo';
import type { MemoryServiceClient as _tensormem_v1_MemoryServiceClient, MemoryServiceDefinition as _tensormem_v1_MemoryServiceDefinition } from './tensormem/v1/MemoryService';
import type { MemorySnapshot as _tensormem_v1_MemorySnapshot, MemorySnapshot__Output as _tensormem_v1_MemorySnapshot__Output } from './tensormem/v1/MemorySnapshot';
import type { PoolSnapshot as _tensormem_v1_PoolSnapshot, PoolSnapshot__Output as _tensormem_v1_PoolSnapshot__Output } from './tensormem/v1/PoolSnapshot';
import type { ProcessMemoryInfo as _tensormem_v1_ProcessMemoryInfo, ProcessMemoryInfo__Output as _tensormem_v1_ProcessMemoryInfo__Output } from './tensormem/v1/ProcessMemoryInfo';
import type { SegmentSnapshot as _tensormem_v1_SegmentSnapshot, SegmentSnapshot__Output as _tensormem_v1_SegmentSnapshot__Output } from './tensormem/v1/SegmentSnapshot';
import type { TenantUsage as _tensormem_v1_TenantUsage, TenantUsage__Output as _tensormem_v1_TenantUsage__Output } from './tensormem/v1/TenantUsage';
import type { WatchMemoryRequest as _tensormem_v1_WatchMemoryRequest, WatchMemoryRequest__Output as _tensormem_v1_WatchMemoryRequest__Output } from './tensormem/v1/WatchMemoryRequest';
import type { WatchMemoryResponse as _tensormem_v1_WatchMemoryResponse, WatchMemoryResponse__Output as _tensormem_v1_WatchMemoryResponse__Output } from './tensormem/v1/WatchMemoryResponse';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  google: {
    protobuf: {
      Timestamp: MessageTypeDefinition<_google_protobuf_Timestamp, _google_protobuf_Timestamp__Output>
    }
  }
  tensormem: {
    v1: {
      BlockSnapshot: MessageTypeDefinition<_tensormem_v1_BlockSnapshot, _tensormem_v1_BlockSnapshot__Output>
      ConfigValue: MessageTypeDefinition<_tensormem_v1_ConfigValue, _tensormem_v1_ConfigValue__Output>
      DevicePoolInfo: MessageTypeDefinition<_tensormem_v1_DevicePoolInfo, _tensormem_v1_DevicePoolInfo__Output>
      GetConfigRequest: MessageTypeDefinition<_tensormem_v1_GetConfigRequest, _tensormem_v1_GetConfigRequest__Output>
      GetConfigResponse: MessageTypeDefinition<_tensormem_v1_GetConfigResponse, _tensormem_v1_GetConfigResponse__Output>
      GetMemoryInfoRequest: MessageTypeDefinition<_tensormem_v1_GetMemoryInfoRequest, _tensormem_v1_GetMemoryInfoRequest__Output>
      GetMemoryInfoResponse: MessageTypeDefinition<_tensormem_v1_GetMemoryInfoResponse, _tensormem_v1_GetMemoryInfoResponse__Output>
      GetMemorySnapshotRequest: MessageTypeDefinition<_tensormem_v1_GetMemorySnapshotRequest, _tensormem_v1_GetMemorySnapshotRequest__Output>
      GetMemorySnapshotResponse: MessageTypeDefinition<_tensormem_v1_GetMemorySnapshotResponse, _tensormem_v1_GetMemorySnapshotResponse__Output>
      HostPoolInfo: MessageTypeDefinition<_tensormem_v1_HostPoolInfo, _tensormem_v1_HostPoolInfo__Output>
      MemoryInfo: MessageTypeDefinition<_tensormem_v1_MemoryInfo, _tensormem_v1_MemoryInfo__Output>
      MemoryService: SubtypeConstructor<typeof grpc.Client, _tensormem_v1_MemoryServiceClient> & { service: _tensormem_v1_MemoryServiceDefinition }
      MemorySnapshot: MessageTypeDefinition<_tensormem_v1_MemorySnapshot, _tensormem_v1_MemorySnapshot__Output>
      PoolSnapshot: MessageTypeDefinition<_tensormem_v1_PoolSnapshot, _tensormem_v1_PoolSnapshot__Output>
      ProcessMemoryInfo: MessageTypeDefinition<_tensormem_v1_ProcessMemoryInfo, _tensormem_v1_ProcessMemoryInfo__Output>
      SegmentSnapshot: MessageTypeDefinition<_tensormem_v1_SegmentSnapshot, _tensormem_v1_SegmentSnapshot__Output>
      TenantUsage: MessageTypeDefinition<_tensormem_v1_TenantUsage, _tensormem_v1_TenantUsage__Output>
      WatchMemoryRequest: MessageTypeDefinition<_tensormem_v1_WatchMemoryRequest, _tensormem_v1_WatchMemoryRequest__Output>
      WatchMemoryResponse: MessageTypeDefinition<_tensormem_v1_WatchMemoryResponse, _tensormem_v1_WatchMemoryResponse__Output>
    }
  }
}

