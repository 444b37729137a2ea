import type * as grpc from '@grpc/grpc-js';
import type { EnumTypeDefinition, MessageTypeDefinition } from '@grpc/proto-loader';

import type { BorrowWorkspaceRequest as _tensormem_v1_BorrowWorkspaceRequest, BorrowWorkspaceRequest__Output as _tensormem_v1_BorrowWorkspaceRequest__Output } from './tensormem/v1/BorrowWorkspaceRequest';
import type { BorrowWorkspaceResponse as _tensormem_v1_BorrowWorkspaceResponse, BorrowWorkspaceResponse__Output as _tensormem_v1_BorrowWorkspaceResponse__Output } from './tensormem/v1/BorrowWorkspaceResponse';
import type { CreateWorkspaceRequest as _tensormem_v1_CreateWorkspaceRequest, CreateWorkspaceRequest__Output as _tensormem_v1_CreateWorkspaceRequest__Output } from './tensormem/v1/CreateWorkspaceRequest';
import type { CreateWorkspaceResponse as _tensormem_v1_CreateWorkspaceResponse, CreateWorkspaceResponse__Output as _tensormem_v1_CreateWorkspaceResponse__Output } from './tensormem/v1/CreateWorkspaceResponse';
import type { DestroyWorkspaceRequest as _tensormem_v1_DestroyWorkspaceRequest, DestroyWorkspaceRequest__Output as _tensormem_v1_DestroyWorkspaceRequest__Output } from './tensormem/v1/DestroyWorkspaceRequest';
import type { DestroyWorkspaceResponse as _tensormem_v1_DestroyWorkspaceResponse, DestroyWorkspaceResponse__Output as _tensormem_v1_DestroyWorkspaceResponse__Output } from './tensormem/v1/DestroyWorkspaceResponse';
import type { EnterWorkspaceRequest as _tensormem_v1_EnterWorkspaceRequest, EnterWorkspaceRequest__Output as _tensormem_v1_EnterWorkspaceRequest__Output } from './tensormem/v1/EnterWorkspaceRequest';
import type { EnterWorkspaceResponse as _tensormem_v1_EnterWorkspaceResponse, EnterWorkspaceResponse__Output as _tensormem_v1_EnterWorkspaceResponse__Output } from './tensormem/v1/EnterWorkspaceResponse';
import type { GetWorkspaceRequest as _tensormem_v1_GetWorkspaceRequest, GetWorkspaceRequest__Output as _tensormem_v1_GetWorkspaceRequest__Output } from './tensormem/v1/GetWorkspaceRequest';
import type { GetWorkspaceResponse as _tensormem_v1_GetWorkspaceResponse, GetWorkspaceResponse__Output as _tensormem_v1_GetWorkspaceResponse__Output } from './tensormem/v1/GetWorkspaceResponse';
import type { InitializeWorkspaceRequest as _tensormem_v1_InitializeWorkspaceRequest, InitializeWorkspaceRequest__Output as _tensormem_v1_InitializeWorkspaceRequest__Output } from './tensormem/v1/InitializeWorkspaceRequest';
import type { InitializeWorkspaceResponse as _tensormem_v1_InitializeWorkspaceResponse, InitializeWorkspaceResponse__Output as _tensormem_v1_InitializeWorkspaceResponse__Output } from './tensormem/v1/InitializeWorkspaceResponse';
import type { LeaveWorkspaceRequest as _tensormem_v1_LeaveWorkspaceRequest, LeaveWorkspaceRequest__Output as _tensormem_v1_LeaveWorkspaceRequest__Output } from './tensormem/v1/LeaveWorkspaceRequest';
import type { LeaveWorkspaceResponse as _tensormem_v1_LeaveWorkspaceResponse, LeaveWorkspaceResponse__Output as _tensormem_v1_LeaveWorkspaceResponse__Output } from './tensormem/v1/LeaveWorkspaceResponse';
import type { ListWorkspacesRequest as _tensormem_v1_ListWorkspacesRequest, ListWorkspacesRequest__Output as _tensormem_v1_ListWorkspacesRequest__Output } from './tensormem/v1/ListWorkspacesRequest';
import type { ListWorkspacesResponse as _tensormem_v1_ListWorkspacesResponse, ListWorkspacesResponse__Output as _tensormem_v1_ListWorkspacesResponse__Output } from './tensormem/v1/ListWorkspacesResponse';
import type { ScopeOutRequest as _tensormem_v1_ScopeOutRequest, ScopeOutRequest__Output as _tensormem_v1_ScopeOutRequest__Output } from './tensormem/v1/ScopeOutRequest';
import type { ScopeOutResponse as _tensormem_v1_ScopeOutResponse, ScopeOutResponse__Output as _tensormem_v1_ScopeOutResponse__Output } from './tensormem/v1/ScopeOutResponse';
import type { WorkspaceConfig as _tensormem_v1_WorkspaceConfig, WorkspaceConfig__Output as _tensormem_v1_WorkspaceConfig__Output } from './tensormem/v1/WorkspaceConfig';
import type { WorkspaceInfo as _tensormem_v1_WorkspaceInfo, WorkspaceInfo__Output as _tensormem_v1_WorkspaceInfo__Output } from './tensormem/v1/WorkspaceInfo';
import type { WorkspaceServiceClient as _tensormem_v1_WorkspaceServiceClient, WorkspaceServiceDefinition as _tensormem_v1_WorkspaceServiceDefinition } from './tensormem/v1/WorkspaceService';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  tensormem: {
    v1: {
      AllocationPolicy: EnumTypeDefinition
      BorrowWorkspaceRequest: MessageTypeDefinition<_tensormem_v1_BorrowWorkspaceRequest, _tensormem_v1_BorrowWorkspaceRequest__Output>
      BorrowWorkspaceResponse: MessageTypeDefinition<_tensormem_v1_BorrowWorkspaceResponse, _tensormem_v1_BorrowWorkspaceResponse__Output>
      CreateWorkspaceRequest: MessageTypeDefinition<_tensormem_v1_CreateWorkspaceRequest, _tensormem_v1_CreateWorkspaceRequest__Output>
      CreateWorkspaceResponse: MessageTypeDefinition<_tensormem_v1_CreateWorkspaceResponse, _tensormem_v1_CreateWorkspaceResponse__Output>
      DestroyWorkspaceRequest: MessageTypeDefinition<_tensormem_v1_DestroyWorkspaceRequest, _tensormem_v1_DestroyWorkspaceRequest__Output>
      DestroyWorkspaceResponse: MessageTypeDefinition<_tensormem_v1_DestroyWorkspaceResponse, _tensormem_v1_DestroyWorkspaceResponse__Output>
      EnterWorkspaceRequest: MessageTypeDefinition<_tensormem_v1_EnterWorkspaceRequest, _tensormem_v1_EnterWorkspaceRequest__Output>
      EnterWorkspaceResponse: MessageTypeDefinition<_tensormem_v1_EnterWorkspaceResponse, _tensormem_v1_EnterWorkspaceResponse__Output>
      GetWorkspaceRequest: MessageTypeDefinition<_tensormem_v1_GetWorkspaceRequest, _tensormem_v1_GetWorkspaceRequest__Output>
      GetWorkspaceResponse: MessageTypeDefinition<_tensormem_v1_GetWorkspaceResponse, _tensormem_v1_GetWorkspaceResponse__Output>
      InitializeWorkspaceRequest: MessageTypeDefinition<_tensormem_v1_InitializeWorkspaceRequest, _tensormem_v1_InitializeWorkspaceRequest__Output>
      InitializeWorkspaceResponse: MessageTypeDefinition<_tensormem_v1_InitializeWorkspaceResponse, _tensormem_v1_InitializeWorkspaceResponse__Output>
      LearningPolicy: EnumTypeDefinition
      LeaveWorkspaceRequest: MessageTypeDefinition<_tensormem_v1_LeaveWorkspaceRequest, _tensormem_v1_LeaveWorkspaceRequest__Output>
      LeaveWorkspaceResponse: MessageTypeDefinition<_tensormem_v1_LeaveWorkspaceResponse, _tensormem_v1_LeaveWorkspaceResponse__Output>
      ListWorkspacesRequest: MessageTypeDefinition<_tensormem_v1_ListWorkspacesRequest, _tensormem_v1_ListWorkspacesRequest__Output>
      ListWorkspacesResponse: MessageTypeDefinition<_tensormem_v1_ListWorkspacesResponse, _tensormem_v1_ListWorkspacesResponse__Output>
      LocationPolicy: EnumTypeDefinition
      MirroringPolicy: EnumTypeDefinition
      ResetPolicy: EnumTypeDefinition
      ScopeOutRequest: MessageTypeDefinition<_tensormem_v1_ScopeOutRequest, _tensormem_v1_ScopeOutRequest__Output>
      ScopeOutResponse: MessageTypeDefinition<_tensormem_v1_ScopeOutResponse, _tensormem_v1_ScopeOutResponse__Output>
      SpillPolicy: EnumTypeDefinition
      WorkspaceConfig: MessageTypeDefinition<_tensormem_v1_WorkspaceConfig, _tensormem_v1_WorkspaceConfig__Output>
      WorkspaceInfo: MessageTypeDefinition<_tensormem_v1_WorkspaceInfo, _tensormem_v1_WorkspaceInfo__Output>
      WorkspaceService: SubtypeConstructor<typeof grpc.Client, _tensormem_v1_WorkspaceServiceClient> & { service: _tensormem_v1_WorkspaceServiceDefinition }
    }
  }
}

