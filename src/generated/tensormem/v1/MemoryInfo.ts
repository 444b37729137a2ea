// Original file: proto/tensormem/v1/memory.proto

import type { DevicePoolInfo as _tensormem_v1_DevicePoolInfo, DevicePoolInfo__Output as _tensormem_v1_DevicePoolInfo__Output } from '../../tensormem/v1/DevicePoolInfo';
import type { HostPoolInfo as _tensormem_v1_HostPoolInfo, HostPoolInfo__Output as _tensormem_v1_HostPoolInfo__Output } from '../../tensormem/v1/HostPoolInfo';
import type { ProcessMemoryInfo as _tensormem_v1_ProcessMemoryInfo, ProcessMemoryInfo__Output as _tensormem_v1_ProcessMemoryInfo__Output } from '../../tensormem/v1/ProcessMemoryInfo';
import type { TenantUsage as _tensormem_v1_TenantUsage, TenantUsage__Output as _tensormem_v1_TenantUsage__Output } from '../../tensormem/v1/TenantUsage';
import type { Timestamp as _google_protobuf_Timestamp, Timestamp__Output as _google_protobuf_Timestamp__Output } from '../../google/protobuf/Timestamp';

export interface MemoryInfo {
  'backend'?: (string);
  'devices'?: (_tensormem_v1_DevicePoolInfo)[];
  'host'?: (_tensormem_v1_HostPoolInfo | null);
  'process'?: (_tensormem_v1_ProcessMemoryInfo | null);
  'tenants'?: (_tensormem_v1_TenantUsage)[];
  'taken_at'?: (_google_protobuf_Timestamp | null);
}

export interface MemoryInfo__Output {
  'backend': (string);
  'devices': (_tensormem_v1_DevicePoolInfo__Output)[];
  'host': (_tensormem_v1_HostPoolInfo__Output | null);
  'process': (_tensormem_v1_ProcessMemoryInfo__Output | null);
  'tenants': (_tensormem_v1_TenantUsage__Output)[];
  'taken_at': (_google_protobuf_Timestamp__Output | null);
}
