import type * as grpc from '@grpc/grpc-js';
import type { EnumTypeDefinition, MessageTypeDefinition } from '@grpc/proto-loader';

import type { Timestamp as _google_protobuf_Timestamp, Timestamp__Output as _google_protobuf_Timestamp__Output } from './google/protobuf/Timestamp';
import type { AllocateArrayRequest as _tensormem_v1_AllocateArrayRequest, AllocateArrayRequest__Output as _tensormem_v1_AllocateArrayRequest__Output } from './tensormem/v1/AllocateArrayRequest';
import type { AllocateArrayResponse as _tensormem_v1_AllocateArrayResponse, AllocateArrayResponse__Output as _tensormem_v1_AllocateArrayResponse__Output } from './tensormem/v1/AllocateArrayResponse';
import type { ArrayInfo as _tensormem_v1_ArrayInfo, ArrayInfo__Output as _tensormem_v1_ArrayInfo__Output } from './tensormem/v1/ArrayInfo';
import type { ArrayServiceClient as _tensormem_v1_ArrayServiceClient, ArrayServiceDefinition as _tensormem_v1_ArrayServiceDefinition } from './tensormem/v1/ArrayService';
import type { CudaIpcRegion as _tensormem_v1_CudaIpcRegion, CudaIpcRegion__Output as _tensormem_v1_CudaIpcRegion__Output } from './tensormem/v1/CudaIpcRegion';
import type { DuplicateArrayRequest as _tensormem_v1_DuplicateArrayRequest, DuplicateArrayRequest__Output as _tensormem_v1_DuplicateArrayRequest__Output } from './tensormem/v1/DuplicateArrayRequest';
import type { DuplicateArrayResponse as _tensormem_v1_DuplicateArrayResponse, DuplicateArrayResponse__Output as _tensormem_v1_DuplicateArrayResponse__Output } from './tensormem/v1/DuplicateArrayResponse';
import type { ExportArrayRequest as _tensormem_v1_ExportArrayRequest, ExportArrayRequest__Output as _tensormem_v1_ExportArrayRequest__Output } from './tensormem/v1/ExportArrayRequest';
import type { ExportArrayResponse as _tensormem_v1_ExportArrayResponse, ExportArrayResponse__Output as _tensormem_v1_ExportArrayResponse__Output } from './tensormem/v1/ExportArrayResponse';
import type { FreeArrayRequest as _tensormem_v1_FreeArrayRequest, FreeArrayRequest__Output as _tensormem_v1_FreeArrayRequest__Output } from './tensormem/v1/FreeArrayRequest';
import type { FreeArrayResponse as _tensormem_v1_FreeArrayResponse, FreeArrayResponse__Output as _tensormem_v1_FreeArrayResponse__Output } from './tensormem/v1/FreeArrayResponse';
import type { GetArrayRequest as _tensormem_v1_GetArrayRequest, GetArrayRequest__Output as _tensormem_v1_GetArrayRequest__Output } from './tensormem/v1/GetArrayRequest';
import type { GetArrayResponse as _tensormem_v1_GetArrayResponse, GetArrayResponse__Output as _tensormem_v1_GetArrayResponse__Output } from './tensormem/v1/GetArrayResponse';
import type { ListArraysRequest as _tensormem_v1_ListArraysRequest, ListArraysRequest__Output as _tensormem_v1_ListArraysRequest__Output } from './tensormem/v1/ListArraysRequest';
import type { ListArraysResponse as _tensormem_v1_ListArraysResponse, ListArraysResponse__Output as _tensormem_v1_ListArraysResponse__Output } from './tensormem/v1/ListArraysResponse';
import type { ReadArrayRequest as _tensormem_v1_ReadArrayRequest, ReadArrayRequest__Output as _tensormem_v1_ReadArrayRequest__Output } from './tensormem/v1/ReadArrayRequest';
import type { ReadArrayResponse as _tensormem_v1_ReadArrayResponse, ReadArrayResponse__Output as _tensormem_v1_ReadArrayResponse__Output } from './tensormem/v1/ReadArrayResponse';
import type { SharedMemoryRegion as _tensormem_v1_SharedMemoryRegion, SharedMemoryRegion__Output as _tensormem_v1_SharedMemoryRegion__Output } from './tensormem/v1/SharedMemoryRegion';
import type { SyncArrayRequest as _tensormem_v1_SyncArrayRequest, SyncArrayRequest__Output as _tensormem_v1_SyncArrayRequest__Output } from './tensormem/v1/SyncArrayRequest';
import type { SyncArrayResponse as _tensormem_v1_SyncArrayResponse, SyncArrayResponse__Output as _tensormem_v1_SyncArrayResponse__Output } from './tensormem/v1/SyncArrayResponse';
import type { WriteArrayHeader as _tensormem_v1_WriteArrayHeader, WriteArrayHeader__Output as _tensormem_v1_WriteArrayHeader__Output } from './tensormem/v1/WriteArrayHeader';
import type { WriteArrayRequest as _tensormem_v1_WriteArrayRequest, WriteArrayRequest__Output as _tensormem_v1_WriteArrayRequest__Output } from './tensormem/v1/WriteArrayRequest';
import type { WriteArrayResponse as _tensormem_v1_WriteArrayResponse, WriteArrayResponse__Output as _tensormem_v1_WriteArrayResponse__Output } from './tensormem/v1/WriteArrayResponse';

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
      AllocateArrayRequest: MessageTypeDefinition<_tensormem_v1_AllocateArrayRequest, _tensormem_v1_AllocateArrayRequest__Output>
      AllocateArrayResponse: MessageTypeDefinition<_tensormem_v1_AllocateArrayResponse, _tensormem_v1_AllocateArrayResponse__Output>
      ArrayInfo: MessageTypeDefinition<_tensormem_v1_ArrayInfo, _tensormem_v1_ArrayInfo__Output>
      ArrayService: SubtypeConstructor<typeof grpc.Client, _tensormem_v1_ArrayServiceClient> & { service: _tensormem_v1_ArrayServiceDefinition }
      CudaIpcRegion: MessageTypeDefinition<_tensormem_v1_CudaIpcRegion, _tensormem_v1_CudaIpcRegion__Output>
      DataType: EnumTypeDefinition
      DuplicateArrayRequest: MessageTypeDefinition<_tensormem_v1_DuplicateArrayRequest, _tensormem_v1_DuplicateArrayRequest__Output>
      DuplicateArrayResponse: MessageTypeDefinition<_tensormem_v1_DuplicateArrayResponse, _tensormem_v1_DuplicateArrayResponse__Output>
      ExportArrayRequest: MessageTypeDefinition<_tensormem_v1_ExportArrayRequest, _tensormem_v1_ExportArrayRequest__Output>
      ExportArrayResponse: MessageTypeDefinition<_tensormem_v1_ExportArrayResponse, _tensormem_v1_ExportArrayResponse__Output>
      ExportSide: EnumTypeDefinition
      FreeArrayRequest: MessageTypeDefinition<_tensormem_v1_FreeArrayRequest, _tensormem_v1_FreeArrayRequest__Output>
      FreeArrayResponse: MessageTypeDefinition<_tensormem_v1_FreeArrayResponse, _tensormem_v1_FreeArrayResponse__Output>
      GetArrayRequest: MessageTypeDefinition<_tensormem_v1_GetArrayRequest, _tensormem_v1_GetArrayRequest__Output>
      GetArrayResponse: MessageTypeDefinition<_tensormem_v1_GetArrayResponse, _tensormem_v1_GetArrayResponse__Output>
      ListArraysRequest: MessageTypeDefinition<_tensormem_v1_ListArraysRequest, _tensormem_v1_ListArraysRequest__Output>
      ListArraysResponse: MessageTypeDefinition<_tensormem_v1_ListArraysResponse, _tensormem_v1_ListArraysResponse__Output>
      Placement: EnumTypeDefinition
      ReadArrayRequest: MessageTypeDefinition<_tensormem_v1_ReadArrayRequest, _tensormem_v1_ReadArrayRequest__Output>
      ReadArrayResponse: MessageTypeDefinition<_tensormem_v1_ReadArrayResponse, _tensormem_v1_ReadArrayResponse__Output>
      SharedMemoryRegion: MessageTypeDefinition<_tensormem_v1_SharedMemoryRegion, _tensormem_v1_SharedMemoryRegion__Output>
      SyncArrayRequest: MessageTypeDefinition<_tensormem_v1_SyncArrayRequest, _tensormem_v1_SyncArrayRequest__Output>
      SyncArrayResponse: MessageTypeDefinition<_tensormem_v1_SyncArrayResponse, _tensormem_v1_SyncArrayResponse__Output>
      SyncDirection: EnumTypeDefinition
      WriteArrayHeader: MessageTypeDefinition<_tensormem_v1_WriteArrayHeader, _tensormem_v1_WriteArrayHeader__Output>
      WriteArrayRequest: MessageTypeDefinition<_tensormem_v1_WriteArrayRequest, _tensormem_v1_WriteArrayRequest__Output>
      WriteArrayResponse: MessageTypeDefinition<_tensormem_v1_WriteArrayResponse, _tensormem_v1_WriteArrayResponse__Output>
    }
  }
}

