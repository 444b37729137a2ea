import type * as grpc from '@grpc/grpc-js';
import type { EnumTypeDefinition, MessageTypeDefinition } from '@grpc/proto-loader';

import type { Timestamp as _google_protobuf_Timestamp, Timestamp__Output as _google_protobuf_Timestamp__Output } from './google/protobuf/Timestamp';
import type { AcquireCudnnWorkspaceRequest as _tensormem_v1_AcquireCudnnWorkspaceRequest, AcquireCudnnWorkspaceRequest__Output as _tensormem_v1_AcquireCudnnWorkspaceRequest__Output } from './tensormem/v1/AcquireCudnnWorkspaceRequest';
import type { AcquireCudnnWorkspaceResponse as _tensormem_v1_AcquireCudnnWorkspaceResponse, AcquireCudnnWorkspaceResponse__Output as _tensormem_v1_AcquireCudnnWorkspaceResponse__Output } from './tensormem/v1/AcquireCudnnWorkspaceResponse';
import type { AllocateArrayRequest as _tensormem_v1_AllocateArrayRequest, AllocateArrayRequest__Output as _tensormem_v1_AllocateArrayRequest__Output } from './tensormem/v1/AllocateArrayRequest';
import type { AllocateArrayResponse as _tensormem_v1_AllocateArrayResponse, AllocateArrayResponse__Output as _tensormem_v1_AllocateArrayResponse__Output } from './tensormem/v1/AllocateArrayResponse';
import type { ArrayInfo as _tensormem_v1_ArrayInfo, ArrayInfo__Output as _tensormem_v1_ArrayInfo__Output } from './tensormem/v1/ArrayInfo';
import type { ArrayServiceClient as _tensormem_v1_ArrayServiceClient, ArrayServiceDefinition as _tensormem_v1_ArrayServiceDefinition } from './tensormem/v1/ArrayService';
import type { BorrowWorkspaceRequest as _tensormem_v1_BorrowWorkspaceRequest, BorrowWorkspaceRequest__Output as _tensormem_v1_BorrowWorkspaceRequest__Output } from './tensormem/v1/BorrowWorkspaceRequest';
import type { BorrowWorkspaceResponse as _tensormem_v1_BorrowWorkspaceResponse, BorrowWorkspaceResponse__Output as _tensormem_v1_BorrowWorkspaceResponse__Output } from './tensormem/v1/BorrowWorkspaceResponse';
import type { ConvolutionDescriptor as _tensormem_v1_ConvolutionDescriptor, ConvolutionDescriptor__Output as _tensormem_v1_ConvolutionDescriptor__Output } from './tensormem/v1/ConvolutionDescriptor';
import type { CreateWorkspaceRequest as _tensormem_v1_CreateWorkspaceRequest, CreateWorkspaceRequest__Output as _tensormem_v1_CreateWorkspaceRequest__Output } from './tensormem/v1/CreateWorkspaceRequest';
import type { CreateWorkspaceResponse as _tensormem_v1_CreateWorkspaceResponse, CreateWorkspaceResponse__Output as _tensormem_v1_CreateWorkspaceResponse__Output } from './tensormem/v1/CreateWorkspaceResponse';
import type { CudaIpcRegion as _tensormem_v1_CudaIpcRegion, CudaIpcRegion__Output as _tensormem_v1_CudaIpcRegion__Output } from './tensormem/v1/CudaIpcRegion';
import type { CudnnAlgorithmCandidate as _tensormem_v1_CudnnAlgorithmCandidate, CudnnAlgorithmCandidate__Output as _tensormem_v1_CudnnAlgorithmCandidate__Output } from './tensormem/v1/CudnnAlgorithmCandidate';
import type { DestroyWorkspaceRequest as _tensormem_v1_DestroyWorkspaceRequest, DestroyWorkspaceRequest__Output as _tensormem_v1_DestroyWorkspaceRequest__Output } from './tensormem/v1/DestroyWorkspaceRequest';
import type { DestroyWorkspaceResponse as _tensormem_v1_DestroyWorkspaceResponse, DestroyWorkspaceResponse__Output as _tensormem_v1_DestroyWorkspaceResponse__Output } from './tensormem/v1/DestroyWorkspaceResponse';
import type { DuplicateArrayRequest as _tensormem_v1_DuplicateArrayRequest, DuplicateArrayRequest__Output as _tensormem_v1_DuplicateArrayRequest__Output } from './tensormem/v1/DuplicateArrayRequest';
import type { DuplicateArrayResponse as _tensormem_v1_DuplicateArrayResponse, DuplicateArrayResponse__Output as _tensormem_v1_DuplicateArrayResponse__Output } from './tensormem/v1/DuplicateArrayResponse';
import type { EnterWorkspaceRequest as _tensormem_v1_EnterWorkspaceRequest, EnterWorkspaceRequest__Output as _tensormem_v1_EnterWorkspaceRequest__Output } from './tensormem/v1/EnterWorkspaceRequest';
import type { EnterWorkspaceResponse as _tensormem_v1_EnterWorkspaceResponse, EnterWorkspaceResponse__Output as _tensormem_v1_EnterWorkspaceResponse__Output } from './tensormem/v1/EnterWorkspaceResponse';
import type { ExportArrayRequest as _tensormem_v1_ExportArrayRequest, ExportArrayRequest__Output as _tensormem_v1_ExportArrayRequest__Output } from './tensormem/v1/ExportArrayRequest';
import type { ExportArrayResponse as _tensormem_v1_ExportArrayResponse, ExportArrayResponse__Output as _tensormem_v1_ExportArrayResponse__Output } from './tensormem/v1/ExportArrayResponse';
import type { FreeArrayRequest as _tensormem_v1_FreeArrayRequest, FreeArrayRequest__Output as _tensormem_v1_FreeArrayRequest__Output } from './tensormem/v1/FreeArrayRequest';
import type { FreeArrayResponse as _tensormem_v1_FreeArrayResponse, FreeArrayResponse__Output as _tensormem_v1_FreeArrayResponse__Output } from './tensormem/v1/FreeArrayResponse';
import type { GetArrayRequest as _tensormem_v1_GetArrayRequest, GetArrayRequest__Output as _tensormem_v1_GetArrayRequest__Output } from './tensormem/v1/GetArrayRequest';
import type { GetArrayResponse as _tensormem_v1_GetArrayResponse, GetArrayResponse__Output as _tensormem_v1_GetArrayResponse__Output } from './tensormem/v1/GetArrayResponse';
import type { GetWorkspaceRequest as _tensormem_v1_GetWorkspaceRequest, GetWorkspaceRequest__Output as _tensormem_v1_GetWorkspaceRequest__Output } from './tensormem/v1/GetWorkspaceRequest';
import type { GetWorkspaceResponse as _tensormem_v1_GetWorkspaceResponse, GetWorkspaceResponse__Output as _tensormem_v1_GetWorkspaceResponse__Output } from './tensormem/v1/GetWorkspaceResponse';
import type { InitializeWorkspaceRequest as _tensormem_v1_InitializeWorkspaceRequest, InitializeWorkspaceRequest__Output as _tensormem_v1_InitializeWorkspaceRequest__Output } from './tensormem/v1/InitializeWorkspaceRequest';
import type { InitializeWorkspaceResponse as _tensormem_v1_InitializeWorkspaceResponse, InitializeWorkspaceResponse__Output as _tensormem_v1_InitializeWorkspaceResponse__Output } from './tensormem/v1/InitializeWorkspaceResponse';
import type { LeaveWorkspaceRequest as _tensormem_v1_LeaveWorkspaceRequest, LeaveWorkspaceRequest__Output as _tensormem_v1_LeaveWorkspaceRequest__Output } from './tensormem/v1/LeaveWorkspaceRequest';
import type { LeaveWorkspaceResponse as _tensormem_v1_LeaveWorkspaceResponse, LeaveWorkspaceResponse__Output as _tensormem_v1_LeaveWorkspaceResponse__Output } from './tensormem/v1/LeaveWorkspaceResponse';
import type { ListArraysRequest as _tensormem_v1_ListArraysRequest, ListArraysRequest__Output as _tensormem_v1_ListArraysRequest__Output } from './tensormem/v1/ListArraysRequest';
import type { ListArraysResponse as _tensormem_v1_ListArraysResponse, ListArraysResponse__Output as _tensormem_v1_ListArraysResponse__Output } from './tensormem/v1/ListArraysResponse';
import type { ListWorkspacesRequest as _tensormem_v1_ListWorkspacesRequest, ListWorkspacesRequest__Output as _tensormem_v1_ListWorkspacesRequest__Output } from './tensormem/v1/ListWorkspacesRequest';
import type { ListWorkspacesResponse as _tensormem_v1_ListWorkspacesResponse, ListWorkspacesResponse__Output as _tensormem_v1_ListWorkspacesResponse__Output } from './tensormem/v1/ListWorkspacesResponse';
import type { ReadArrayRequest as _tensormem_v1_ReadArrayRequest, ReadArrayRequest__Output as _tensormem_v1_ReadArrayRequest__Output } from './tensormem/v1/ReadArrayRequest';
import type { ReadArrayResponse as _tensormem_v1_ReadArrayResponse, ReadArrayResponse__Output as _tensormem_v1_ReadArrayResponse__Output } from './tensormem/v1/ReadArrayResponse';
import type { ScopeOutRequest as _tensormem_v1_ScopeOutRequest, ScopeOutRequest__Output as _tensormem_v1_ScopeOutRequest__Output } from './tensormem/v1/ScopeOutRequest';
import type { ScopeOutResponse as _tensormem_v1_ScopeOutResponse, ScopeOutResponse__Output as _tensormem_v1_ScopeOutResponse__Output } from './tensormem/v1/ScopeOutResponse';
import type { SharedMemoryRegion as _tensormem_v1_SharedMemoryRegion, SharedMemoryRegion__Output as _tensormem_v1_SharedMemoryRegion__Output } from './tensormem/v1/SharedMemoryRegion';
import type { SyncArrayRequest as _tensormem_v1_SyncArrayRequest, SyncArrayRequest__Output as _tensormem_v1_SyncArrayRequest__Output } from './tensormem/v1/SyncArrayRequest';
import type { SyncArrayResponse as _tensormem_v1_SyncArrayResponse, SyncArrayResponse__Output as _tensormem_v1_SyncArrayResponse__Output } from './tensormem/v1/SyncArrayResponse';
import type { WorkspaceConfig as _tensormem_v1_WorkspaceConfig, WorkspaceConfig__Output as _tensormem_v1_WorkspaceConfig__Output } from './tensormem/v1/WorkspaceConfig';
import type { WorkspaceInfo as _tensormem_v1_WorkspaceInfo, WorkspaceInfo__Output as _tensormem_v1_WorkspaceInfo__Output } from './tensormem/v1/WorkspaceInfo';
import type { WorkspaceServiceClient as _tensormem_v1_WorkspaceServiceClient, WorkspaceServiceDefinition as _tensormem_v1_WorkspaceServiceDefinition } from './tensormem/v1/WorkspaceService';
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
      AcquireCudnnWorkspaceRequest: MessageTypeDefinition<_tensormem_v1_AcquireCudnnWorkspaceRequest, _tensormem_v1_AcquireCudnnWorkspaceRequest__Output>
      AcquireCudnnWorkspaceResponse: MessageTypeDefinition<_tensormem_v1_AcquireCudnnWorkspaceResponse, _tensormem_v1_AcquireCudnnWorkspaceResponse__Output>
      AllocateArrayRequest: MessageTypeDefinition<_tensormem_v1_AllocateArrayRequest, _tensormem_v1_AllocateArrayRequest__Output>
      AllocateArrayResponse: MessageTypeDefinition<_tensormem_v1_AllocateArrayResponse, _tensormem_v1_AllocateArrayResponse__Output>
      AllocationPolicy: EnumTypeDefinition
      ArrayInfo: MessageTypeDefinition<_tensormem_v1_ArrayInfo, _tensormem_v1_ArrayInfo__Output>
      ArrayService: SubtypeConstructor<typeof grpc.Client, _tensormem_v1_ArrayServiceClient> & { service: _tensormem_v1_ArrayServiceDefinition }
      BorrowWorkspaceRequest: MessageTypeDefinition<_tensormem_v1_BorrowWorkspaceRequest, _tensormem_v1_BorrowWorkspaceRequest__Output>
      BorrowWorkspaceResponse: MessageTypeDefinition<_tensormem_v1_BorrowWorkspaceResponse, _tensormem_v1_BorrowWorkspaceResponse__Output>
      ConvolutionDescriptor: MessageTypeDefinition<_tensormem_v1_ConvolutionDescriptor, _tensormem_v1_ConvolutionDescriptor__Output>
      ConvolutionDirection: EnumTypeDefinition
      CreateWorkspaceRequest: MessageTypeDefinition<_tensormem_v1_CreateWorkspaceRequest, _tensormem_v1_CreateWorkspaceRequest__Output>
      CreateWorkspaceResponse: MessageTypeDefinition<_tensormem_v1_CreateWorkspaceResponse, _tensormem_v1_CreateWorkspaceResponse__Output>
      CudaIpcRegion: MessageTypeDefinition<_tensormem_v1_CudaIpcRegion, _tensormem_v1_CudaIpcRegion__Output>
      CudnnAlgoMode: EnumTypeDefinition
      CudnnAlgorithmCandidate: MessageTypeDefinition<_tensormem_v1_CudnnAlgorithmCandidate, _tensormem_v1_CudnnAlgorithmCandidate__Output>
      DataType: EnumTypeDefinition
      DestroyWorkspaceRequest: MessageTypeDefinition<_tensormem_v1_DestroyWorkspaceRequest, _tensormem_v1_DestroyWorkspaceRequest__Output>
      DestroyWorkspaceResponse: MessageTypeDefinition<_tensormem_v1_DestroyWorkspaceResponse, _tensormem_v1_DestroyWorkspaceResponse__Output>
      DuplicateArrayRequest: MessageTypeDefinition<_tensormem_v1_DuplicateArrayRequest, _tensormem_v1_DuplicateArrayRequest__Output>
      DuplicateArrayResponse: MessageTypeDefinition<_tensormem_v1_DuplicateArrayResponse, _tensormem_v1_DuplicateArrayResponse__Output>
      EnterWorkspaceRequest: MessageTypeDefinition<_tensormem_v1_EnterWorkspaceRequest, _tensormem_v1_EnterWorkspaceRequest__Output>
      EnterWorkspaceResponse: MessageTypeDefinition<_tensormem_v1_EnterWorkspaceResponse, _tensormem_v1_EnterWorkspaceResponse__Output>
      ExportArrayRequest: MessageTypeDefinition<_tensormem_v1_ExportArrayRequest, _tensormem_v1_ExportArrayRequest__Output>
      ExportArrayResponse: MessageTypeDefinition<_tensormem_v1_ExportArrayResponse, _tensormem_v1_ExportArrayResponse__Output>
      ExportSide: EnumTypeDefinition
      FreeArrayRequest: MessageTypeDefinition<_tensormem_v1_FreeArrayRequest, _tensormem_v1_FreeArrayRequest__Output>
      FreeArrayResponse: MessageTypeDefinition<_tensormem_v1_FreeArrayResponse, _tensormem_v1_FreeArrayResponse__Output>
      GetArrayRequest: MessageTypeDefinition<_tensormem_v1_GetArrayRequest, _tensormem_v1_GetArrayRequest__Output>
      GetArrayResponse: MessageTypeDefinition<_tensormem_v1_GetArrayResponse, _tensormem_v1_GetArrayResponse__Output>
      GetWorkspaceRequest: MessageTypeDefinition<_tensormem_v1_GetWorkspaceRequest, _tensormem_v1_GetWorkspaceRequest__Output>
      GetWorkspaceResponse: MessageTypeDefinition<_tensormem_v1_GetWorkspaceResponse, _tensormem_v1_GetWorkspaceResponse__Output>
      InitializeWorkspaceRequest: MessageTypeDefinition<_tensormem_v1_InitializeWorkspaceRequest, _tensormem_v1_InitializeWorkspaceRequest__Output>
      InitializeWorkspaceResponse: MessageTypeDefinition<_tensormem_v1_InitializeWorkspaceResponse, _tensormem_v1_InitializeWorkspaceResponse__Output>
      LearningPolicy: EnumTypeDefinition
      LeaveWorkspaceRequest: MessageTypeDefinition<_tensormem_v1_LeaveWorkspaceRequest, _tensormem_v1_LeaveWorkspaceRequest__Output>
      LeaveWorkspaceResponse: MessageTypeDefinition<_tensormem_v1_LeaveWorkspaceResponse, _tensormem_v1_LeaveWorkspaceResponse__Output>
      ListArraysRequest: MessageTypeDefinition<_tensormem_v1_ListArraysRequest, _tensormem_v1_ListArraysRequest__Output>
      ListArraysResponse: MessageTypeDefinition<_tensormem_v1_ListArraysResponse, _tensormem_v1_ListArraysResponse__Output>
      ListWorkspacesRequest: MessageTypeDefinition<_tensormem_v1_ListWorkspacesRequest, _tensormem_v1_ListWorkspacesRequest__Output>
      ListWorkspacesResponse: MessageTypeDefinition<_tensormem_v1_ListWorkspacesResponse, _tensormem_v1_ListWorkspacesResponse__Output>
      LocationPolicy: EnumTypeDefinition
      MirroringPolicy: EnumTypeDefinition
      Placement: EnumTypeDefinition
      ReadArrayRequest: MessageTypeDefinition<_tensormem_v1_ReadArrayRequest, _tensormem_v1_ReadArrayRequest__Output>
      ReadArrayResponse: MessageTypeDefinition<_tensormem_v1_ReadArrayResponse, _tensormem_v1_ReadArrayResponse__Output>
      ResetPolicy: EnumTypeDefinition
      ScopeOutRequest: MessageTypeDefinition<_tensormem_v1_ScopeOutRequest, _tensormem_v1_ScopeOutRequest__Output>
      ScopeOutResponse: MessageTypeDefinition<_tensormem_v1_ScopeOutResponse, _tensormem_v1_ScopeOutResponse__Output>
      SharedMemoryRegion: MessageTypeDefinition<_tensormem_v1_SharedMemoryRegion, _tensormem_v1_SharedMemoryRegion__Output>
      SpillPolicy: EnumTypeDefinition
      SyncArrayRequest: MessageTypeDefinition<_tensormem_v1_SyncArrayRequest, _tensormem_v1_SyncArrayRequest__Output>
      SyncArrayResponse: MessageTypeDefinition<_tensormem_v1_SyncArrayResponse, _tensormem_v1_SyncArrayResponse__Output>
      SyncDirection: EnumTypeDefinition
      WorkspaceConfig: MessageTypeDefinition<_tensormem_v1_WorkspaceConfig, _tensormem_v1_WorkspaceConfig__Output>
      WorkspaceInfo: MessageTypeDefinition<_tensormem_v1_WorkspaceInfo, _tensormem_v1_WorkspaceInfo__Output>
      WorkspaceService: SubtypeConstructor<typeof grpc.Client, _tensormem_v1_WorkspaceServiceClient> & { service: _tensormem_v1_WorkspaceServiceDefinition }
      WriteArrayHeader: MessageTypeDefinition<_tensormem_v1_WriteArrayHeader, _tensormem_v1_WriteArrayHeader__Output>
      WriteArrayRequest: MessageTypeDefinition<_tensormem_v1_WriteArrayRequest, _tensormem_v1_WriteArrayRequest__Output>
      WriteArrayResponse: MessageTypeDefinition<_tensormem_v1_WriteArrayResponse, _tensormem_v1_WriteArrayResponse__Output>
    }
  }
}

