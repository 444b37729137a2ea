// Original file: proto/tensormem/v1/workspace.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { AcquireCudnnWorkspaceRequest as _tensormem_v1_AcquireCudnnWorkspaceRequest, AcquireCudnnWorkspaceRequest__Output as _tensormem_v1_AcquireCudnnWorkspaceRequest__Output } from '../../tensormem/v1/AcquireCudnnWorkspaceRequest';
import type { AcquireCudnnWorkspaceResponse as _tensormem_v1_AcquireCudnnWorkspaceResponse, AcquireCudnnWorkspaceResponse__Output as _tensormem_v1_AcquireCudnnWorkspaceResponse__Output } from '../../tensormem/v1/AcquireCudnnWorkspaceResponse';
import type { BorrowWorkspaceRequest as _tensormem_v1_BorrowWorkspaceRequest, BorrowWorkspaceRequest__Output as _tensormem_v1_BorrowWorkspaceRequest__Output } from '../../tensormem/v1/BorrowWorkspaceRequest';
import type { BorrowWorkspaceResponse as _tensormem_v1_BorrowWorkspaceResponse, BorrowWorkspaceResponse__Output as _tensormem_v1_BorrowWorkspaceResponse__Output } from '../../tensormem/v1/BorrowWorkspaceResponse';
import type { CreateWorkspaceRequest as _tensormem_v1_CreateWorkspaceRequest, CreateWorkspaceRequest__Output as _tensormem_v1_CreateWorkspaceRequest__Output } from '../../tensormem/v1/CreateWorkspaceRequest';
import type { CreateWorkspaceResponse as _tensormem_v1_CreateWorkspaceResponse, CreateWorkspaceResponse__Output as _tensormem_v1_CreateWorkspaceResponse__Output } from '../../tensormem/v1/CreateWorkspaceResponse';
import type { DestroyWorkspaceRequest as _tensormem_v1_DestroyWorkspaceRequest, DestroyWorkspaceRequest__Output as _tensormem_v1_DestroyWorkspaceRequest__Output } from '../../tensormem/v1/DestroyWorkspaceRequest';
import type { DestroyWorkspaceResponse as _tensormem_v1_DestroyWorkspaceResponse, DestroyWorkspaceResponse__Output as _tensormem_v1_DestroyWorkspaceResponse__Output } from '../../tensormem/v1/DestroyWorkspaceResponse';
import type { EnterWorkspaceRequest as _tensormem_v1_EnterWorkspaceRequest, EnterWorkspaceRequest__Output as _tensormem_v1_EnterWorkspaceRequest__Output } from '../../tensormem/v1/EnterWorkspaceRequest';
import type { EnterWorkspaceResponse as _tensormem_v1_EnterWorkspaceResponse, EnterWorkspaceResponse__Output as _tensormem_v1_EnterWorkspaceResponse__Output } from '../../tensormem/v1/EnterWorkspaceResponse';
import type { GetWorkspaceRequest as _tensormem_v1_GetWorkspaceRequest, GetWorkspaceRequest__Output as _tensormem_v1_GetWorkspaceRequest__Output } from '../../tensormem/v1/GetWorkspaceRequest';
import type { GetWorkspaceResponse as _tensormem_v1_GetWorkspaceResponse, GetWorkspaceResponse__Output as _tensormem_v1_GetWorkspaceResponse__Output } from '../../tensormem/v1/GetWorkspaceResponse';
import type { InitializeWorkspaceRequest as _tensormem_v1_InitializeWorkspaceRequest, InitializeWorkspaceRequest__Output as _tensormem_v1_InitializeWorkspaceRequest__Output } from '../../tensormem/v1/InitializeWorkspaceRequest';
import type { InitializeWorkspaceResponse as _tensormem_v1_InitializeWorkspaceResponse, InitializeWorkspaceResponse__Output as _tensormem_v1_InitializeWorkspaceResponse__Output } from '../../tensormem/v1/InitializeWorkspaceResponse';
import type { LeaveWorkspaceRequest as _tensormem_v1_LeaveWorkspaceRequest, LeaveWorkspaceRequest__Output as _tensormem_v1_LeaveWorkspaceRequest__Output } from '../../tensormem/v1/LeaveWorkspaceRequest';
import type { LeaveWorkspaceResponse as _tensormem_v1_LeaveWorkspaceResponse, LeaveWorkspaceResponse__Output as _tensormem_v1_LeaveWorkspaceResponse__Output } from '../../tensormem/v1/LeaveWorkspaceResponse';
import type { ListWorkspacesRequest as _tensormem_v1_ListWorkspacesRequest, ListWorkspacesRequest__Output as _tensormem_v1_ListWorkspacesRequest__Output } from '../../tensormem/v1/ListWorkspacesRequest';
import type { ListWorkspacesResponse as _tensormem_v1_ListWorkspacesResponse, ListWorkspacesResponse__Output as _tensormem_v1_ListWorkspacesResponse__Output } from '../../tensormem/v1/ListWorkspacesResponse';
import type { ScopeOutRequest as _tensormem_v1_ScopeOutRequest, ScopeOutRequest__Output as _tensormem_v1_ScopeOutRequest__Output } from '../../tensormem/v1/ScopeOutRequest';
import type { ScopeOutResponse as _tensormem_v1_ScopeOutResponse, ScopeOutResponse__Output as _tensormem_v1_ScopeOutResponse__Output } from '../../tensormem/v1/ScopeOutResponse';

export interface WorkspaceServiceClient extends grpc.Client {
  AcquireCudnnWorkspace(argument: _tensormem_v1_AcquireCudnnWorkspaceRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_AcquireCudnnWorkspaceResponse__Output>): grpc.ClientUnaryCall;
  AcquireCudnnWorkspace(argument: _tensormem_v1_AcquireCudnnWorkspaceRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tensormem_v1_AcquireCudnnWorkspaceResponse__Output>): grpc.ClientUnaryCall;
  AcquireCudnnWorkspace(argument: _tensormem_v1_AcquireCudnnWorkspaceRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_AcquireCudnnWorkspaceResponse__Output>): grpc.ClientUnaryCall;
  AcquireCudnnWorkspace(argument: _tensormem_v1_AcquireCudnnWorkspaceRequest, callback: grpc.requestCallback<_tensormem_v1_AcquireCudnnWorkspaceResponse__Output>): grpc.ClientUnaryCall;
  acquireCudnnWorkspace(argument: _tensormem_v1_AcquireCudnnWorkspaceRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_AcquireCudnnWorkspaceResponse__Output>): grpc.ClientUnaryCall;
  acquireCudnnWorkspace(argument: _tensormem_v1_AcquireCudnnWorkspaceRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tensormem_v1_AcquireCudnnWorkspaceResponse__Output>): grpc.ClientUnaryCall;
  acquireCudnnWorkspace(argument: _tensormem_v1_AcquireCudnnWorkspaceRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_AcquireCudnnWorkspaceResponse__Output>): grpc.ClientUnaryCall;
  acquireCudnnWorkspace(argument: _tensormem_v1_AcquireCudnnWorkspaceRequest, callback: grpc.requestCallback<_tensormem_v1_AcquireCudnnWorkspaceResponse__Output>): grpc.ClientUnaryCall;
  
  BorrowWorkspace(argument: _tensormem_v1_BorrowWorkspaceRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_BorrowWorkspaceResponse__Output>): grpc.ClientUnaryCall;
  BorrowWorkspace(argument: _tensormem_v1_BorrowWorkspaceRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tensormem_v1_BorrowWorkspaceResponse__Output>): grpc.ClientUnaryCall;
  BorrowWorkspace(argument: _tensormem_v1_BorrowWorkspaceRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_BorrowWorkspaceResponse__Output>): grpc.ClientUnaryCall;
  BorrowWorkspace(argument: _tensormem_v1_BorrowWorkspaceRequest, callback: grpc.requestCallback<_tensormem_v1_BorrowWorkspaceResponse__Output>): grpc.ClientUnaryCall;
  borrowWorkspace(argument: _tensormem_v1_BorrowWorkspaceRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_BorrowWorkspaceResponse__Output>): grpc.ClientUnaryCall;
  borrowWorkspace(argument: _tensormem_v1_BorrowWorkspaceRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tensormem_v1_BorrowWorkspaceResponse__Output>): grpc.ClientUnaryCall;
  borrowWorkspace(argument: _tensormem_v1_BorrowWorkspaceRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_BorrowWorkspaceResponse__Output>): grpc.ClientUnaryCall;
  borrowWorkspace(argument: _tensormem_v1_BorrowWorkspaceRequest, callback: grpc.requestCallback<_tensormem_v1_BorrowWorkspaceResponse__Output>): grpc.ClientUnaryCall;
  
  CreateWorkspace(argument: _tensormem_v1_CreateWorkspaceRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_CreateWorkspaceResponse__Output>): grpc.ClientUnaryCall;
  CreateWorkspace(argument: _tensormem_v1_CreateWorkspaceRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tensormem_v1_CreateWorkspaceResponse__Output>): grpc.ClientUnaryCall;
  CreateWorkspace(argument: _tensormem_v1_CreateWorkspaceRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_CreateWorkspaceResponse__Output>): grpc.ClientUnaryCall;
  CreateWorkspace(argument: _tensormem_v1_CreateWorkspaceRequest, callback: grpc.requestCallback<_tensormem_v1_CreateWorkspaceResponse__Output>): grpc.ClientUnaryCall;
  createWorkspace(argument: _tensormem_v1_CreateWorkspaceRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_CreateWorkspaceResponse__Output>): grpc.ClientUnaryCall;
  createWorkspace(argument: _tensormem_v1_CreateWorkspaceRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tensormem_v1_CreateWorkspaceResponse__Output>): grpc.ClientUnaryCall;
  createWorkspace(argument: _tensormem_v1_CreateWorkspaceRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_CreateWorkspaceResponse__Output>): grpc.ClientUnaryCall;
  createWorkspace(argument: _tensormem_v1_CreateWorkspaceRequest, callback: grpc.requestCallback<_tensormem_v1_CreateWorkspaceResponse__Output>): grpc.ClientUnaryCall;
  
  DestroyWorkspace(argument: _tensormem_v1_DestroyWorkspaceRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_DestroyWorkspaceResponse__Output>): grpc.ClientUnaryCall;
  DestroyWorkspace(argument: _tensormem_v1_DestroyWorkspaceRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tensormem_v1_DestroyWorkspaceResponse__Output>): grpc.ClientUnaryCall;
  DestroyWorkspace(argument: _tensormem_v1_DestroyWorkspaceRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_DestroyWorkspaceResponse__Output>): grpc.ClientUnaryCall;
  DestroyWorkspace(argument: _tensormem_v1_DestroyWorkspaceRequest, callback: grpc.requestCallback<_tensormem_v1_DestroyWorkspaceResponse__Output>): grpc.ClientUnaryCall;
  destroyWorkspace(argument: _tensormem_v1_DestroyWorkspaceRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_DestroyWorkspaceResponse__Output>): grpc.ClientUnaryCall;
  destroyWorkspace(argument: _tensormem_v1_DestroyWorkspaceRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tensormem_v1_DestroyWorkspaceResponse__Output>): grpc.ClientUnaryCall;
  destroyWorkspace(argument: _tensormem_v1_DestroyWorkspaceRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_DestroyWorkspaceResponse__Output>): grpc.ClientUnaryCall;
  destroyWorkspace(argument: _tensormem_v1_DestroyWorkspaceRequest, callback: grpc.requestCallback<_tensormem_v1_DestroyWorkspaceResponse__Output>): grpc.ClientUnaryCall;
  
  EnterWorkspace(argument: _tensormem_v1_EnterWorkspaceRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_EnterWorkspaceResponse__Output>): grpc.ClientUnaryCall;
  EnterWorkspace(argument: _tensormem_v1_EnterWorkspaceRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tensormem_v1_EnterWorkspaceResponse__Output>): grpc.ClientUnaryCall;
  EnterWorkspace(argument: _tensormem_v1_EnterWorkspaceRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_EnterWorkspaceResponse__Output>): grpc.ClientUnaryCall;
  EnterWorkspace(argument: _tensormem_v1_EnterWorkspaceRequest, callback: grpc.requestCallback<_tensormem_v1_EnterWorkspaceResponse__Output>): grpc.ClientUnaryCall;
  enterWorkspace(argument: _tensormem_v1_EnterWorkspaceRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_EnterWorkspaceResponse__Output>): grpc.ClientUnaryCall;
  enterWorkspace(argument: _tensormem_v1_EnterWorkspaceRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tensormem_v1_EnterWorkspaceResponse__Output>): grpc.ClientUnaryCall;
  enterWorkspace(argument: _tensormem_v1_EnterWorkspaceRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_EnterWorkspaceResponse__Output>): grpc.ClientUnaryCall;
  enterWorkspace(argument: _tensormem_v1_EnterWorkspaceRequest, callback: grpc.requestCallback<_tensormem_v1_EnterWorkspaceResponse__Output>): grpc.ClientUnaryCall;
  
  GetWorkspace(argument: _tensormem_v1_GetWorkspaceRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_GetWorkspaceResponse__Output>): grpc.ClientUnaryCall;
  GetWorkspace(argument: _tensormem_v1_GetWorkspaceRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tensormem_v1_GetWorkspaceResponse__Output>): grpc.ClientUnaryCall;
  GetWorkspace(argument: _tensormem_v1_GetWorkspaceRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_GetWorkspaceResponse__Output>): grpc.ClientUnaryCall;
  GetWorkspace(argument: _tensormem_v1_GetWorkspaceRequest, callback: grpc.requestCallback<_tensormem_v1_GetWorkspaceResponse__Output>): grpc.ClientUnaryCall;
  getWorkspace(argument: _tensormem_v1_GetWorkspaceRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_GetWorkspaceResponse__Output>): grpc.ClientUnaryCall;
  getWorkspace(argument: _tensormem_v1_GetWorkspaceRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tensormem_v1_GetWorkspaceResponse__Output>): grpc.ClientUnaryCall;
  getWorkspace(argument: _tensormem_v1_GetWorkspaceRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_GetWorkspaceResponse__Output>): grpc.ClientUnaryCall;
  getWorkspace(argument: _tensormem_v1_GetWorkspaceRequest, callback: grpc.requestCallback<_tensormem_v1_GetWorkspaceResponse__Output>): grpc.ClientUnaryCall;
  
  InitializeWorkspace(argument: _tensormem_v1_InitializeWorkspaceRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_InitializeWorkspaceResponse__Output>): grpc.ClientUnaryCall;
  InitializeWorkspace(argument: _tensormem_v1_InitializeWorkspaceRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tensormem_v1_InitializeWorkspaceResponse__Output>): grpc.ClientUnaryCall;
  InitializeWorkspace(argument: _tensormem_v1_InitializeWorkspaceRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_InitializeWorkspaceResponse__Output>): grpc.ClientUnaryCall;
  InitializeWorkspace(argument: _tensormem_v1_InitializeWorkspaceRequest, callback: grpc.requestCallback<_tensormem_v1_InitializeWorkspaceResponse__Output>): grpc.ClientUnaryCall;
  initializeWorkspace(argument: _tensormem_v1_InitializeWorkspaceRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_InitializeWorkspaceResponse__Output>): grpc.ClientUnaryCall;
  initializeWorkspace(argument: _tensormem_v1_InitializeWorkspaceRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tensormem_v1_InitializeWorkspaceResponse__Output>): grpc.ClientUnaryCall;
  initializeWorkspace(argument: _tensormem_v1_InitializeWorkspaceRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_InitializeWorkspaceResponse__Output>): grpc.ClientUnaryCall;
  initializeWorkspace(argument: _tensormem_v1_InitializeWorkspaceRequest, callback: grpc.requestCallback<_tensormem_v1_InitializeWorkspaceResponse__Output>): grpc.ClientUnaryCall;
  
  LeaveWorkspace(argument: _tensormem_v1_LeaveWorkspaceRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_LeaveWorkspaceResponse__Output>): grpc.ClientUnaryCall;
  LeaveWorkspace(argument: _tensormem_v1_LeaveWorkspaceRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tensormem_v1_LeaveWorkspaceResponse__Output>): grpc.ClientUnaryCall;
  LeaveWorkspace(argument: _tensormem_v1_LeaveWorkspaceRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_LeaveWorkspaceResponse__Output>): grpc.ClientUnaryCall;
  LeaveWorkspace(argument: _tensormem_v1_LeaveWorkspaceRequest, callback: grpc.requestCallback<_tensormem_v1_LeaveWorkspaceResponse__Output>): grpc.ClientUnaryCall;
  leaveWorkspace(argument: _tensormem_v1_LeaveWorkspaceRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_LeaveWorkspaceResponse__Output>): grpc.ClientUnaryCall;
  leaveWorkspace(argument: _tensormem_v1_LeaveWorkspaceRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tensormem_v1_LeaveWorkspaceResponse__Output>): grpc.ClientUnaryCall;
  leaveWorkspace(argument: _tensormem_v1_LeaveWorkspaceRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_LeaveWorkspaceResponse__Output>): grpc.ClientUnaryCall;
  leaveWorkspace(argument: _tensormem_v1_LeaveWorkspaceRequest, callback: grpc.requestCallback<_tensormem_v1_LeaveWorkspaceResponse__Output>): grpc.ClientUnaryCall;
  
  ListWorkspaces(argument: _tensormem_v1_ListWorkspacesRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_ListWorkspacesResponse__Output>): grpc.ClientUnaryCall;
  ListWorkspaces(argument: _tensormem_v1_ListWorkspacesRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tensormem_v1_ListWorkspacesResponse__Output>): grpc.ClientUnaryCall;
  ListWorkspaces(argument: _tensormem_v1_ListWorkspacesRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_ListWorkspacesResponse__Output>): grpc.ClientUnaryCall;
  ListWorkspaces(argument: _tensormem_v1_ListWorkspacesRequest, callback: grpc.requestCallback<_tensormem_v1_ListWorkspacesResponse__Output>): grpc.ClientUnaryCall;
  listWorkspaces(argument: _tensormem_v1_ListWorkspacesRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_ListWorkspacesResponse__Output>): grpc.ClientUnaryCall;
  listWorkspaces(argument: _tensormem_v1_ListWorkspacesRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tensormem_v1_ListWorkspacesResponse__Output>): grpc.ClientUnaryCall;
  listWorkspaces(argument: _tensormem_v1_ListWorkspacesRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_ListWorkspacesResponse__Output>): grpc.ClientUnaryCall;
  listWorkspaces(argument: _tensormem_v1_ListWorkspacesRequest, callback: grpc.requestCallback<_tensormem_v1_ListWorkspacesResponse__Output>): grpc.ClientUnaryCall;
  
  ScopeOut(argument: _tensormem_v1_ScopeOutRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_ScopeOutResponse__Output>): grpc.ClientUnaryCall;
  ScopeOut(argument: _tensormem_v1_ScopeOutRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tensormem_v1_ScopeOutResponse__Output>): grpc.ClientUnaryCall;
  ScopeOut(argument: _tensormem_v1_ScopeOutRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_ScopeOutResponse__Output>): grpc.ClientUnaryCall;
  ScopeOut(argument: _tensormem_v1_ScopeOutRequest, callback: grpc.requestCallback<_tensormem_v1_ScopeOutResponse__Output>): grpc.ClientUnaryCall;
  scopeOut(argument: _tensormem_v1_ScopeOutRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_ScopeOutResponse__Output>): grpc.ClientUnaryCall;
  scopeOut(argument: _tensormem_v1_ScopeOutRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tensormem_v1_ScopeOutResponse__Output>): grpc.ClientUnaryCall;
  scopeOut(argument: _tensormem_v1_ScopeOutRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_ScopeOutResponse__Output>): grpc.ClientUnaryCall;
  scopeOut(argument: _tensormem_v1_ScopeOutRequest, callback: grpc.requestCallback<_tensormem_v1_ScopeOutResponse__Output>): grpc.ClientUnaryCall;
  
}

export interface WorkspaceServiceHandlers extends grpc.UntypedServiceImplementation {
  AcquireCudnnWorkspace: grpc.handleUnaryCall<_tensormem_v1_AcquireCudnnWorkspaceRequest__Output, _tensormem_v1_AcquireCudnnWorkspaceResponse>;
  
  BorrowWorkspace: grpc.handleUnaryCall<_tensormem_v1_BorrowWorkspaceRequest__Output, _tensormem_v1_BorrowWorkspaceResponse>;
  
  CreateWorkspace: grpc.handleUnaryCall<_tensormem_v1_CreateWorkspaceRequest__Output, _tensormem_v1_CreateWorkspaceResponse>;
  
  DestroyWorkspace: grpc.handleUnaryCall<_tensormem_v1_DestroyWorkspaceRequest__Output, _tensormem_v1_DestroyWorkspaceResponse>;
  
  EnterWorkspace: grpc.handleUnaryCall<_tensormem_v1_EnterWorkspaceRequest__Output, _tensormem_v1_EnterWorkspaceResponse>;
  
  GetWorkspace: grpc.handleUnaryCall<_tensormem_v1_GetWorkspaceRequest__Output, _tensormem_v1_GetWorkspaceResponse>;
  
  InitializeWorkspace: grpc.handleUnaryCall<_tensormem_v1_InitializeWorkspaceRequest__Output, _tensormem_v1_InitializeWorkspaceResponse>;
  
  LeaveWorkspace: grpc.handleUnaryCall<_tensormem_v1_LeaveWorkspaceRequest__Output, _tensormem_v1_LeaveWorkspaceResponse>;
  
  ListWorkspaces: grpc.handleUnaryCall<_tensormem_v1_ListWorkspacesRequest__Output, _tensormem_v1_ListWorkspacesResponse>;
  
  ScopeOut: grpc.handleUnaryCall<_tensormem_v1_ScopeOutRequest__Output, _tensormem_v1_ScopeOutResponse>;
  
}

export interface WorkspaceServiceDefinition extends grpc.ServiceDefinition {
  AcquireCudnnWorkspace: MethodDefinition<_tensormem_v1_AcquireCudnnWorkspaceRequest, _tensormem_v1_AcquireCudnnWorkspaceResponse, _tensormem_v1_AcquireCudnnWorkspaceRequest__Output, _tensormem_v1_AcquireCudnnWorkspaceResponse__Output>
  BorrowWorkspace: MethodDefinition<_tensormem_v1_BorrowWorkspaceRequest, _tensormem_v1_BorrowWorkspaceResponse, _tensormem_v1_BorrowWorkspaceRequest__Output, _tensormem_v1_BorrowWorkspaceResponse__Output>
  CreateWorkspace: MethodDefinition<_tensormem_v1_CreateWorkspaceRequest, _tensormem_v1_CreateWorkspaceResponse, _tensormem_v1_CreateWorkspaceRequest__Output, _tensormem_v1_CreateWorkspaceResponse__Output>
  DestroyWorkspace: MethodDefinition<_tensormem_v1_DestroyWorkspaceRequest, _tensormem_v1_DestroyWorkspaceResponse, _tensormem_v1_DestroyWorkspaceRequest__Output, _tensormem_v1_DestroyWorkspaceResponse__Output>
  EnterWorkspace: MethodDefinition<_tensormem_v1_EnterWorkspaceRequest, _tensormem_v1_EnterWorkspaceResponse, _tensormem_v1_EnterWorkspaceRequest__Output, _tensormem_v1_EnterWorkspaceResponse__Output>
  GetWorkspace: MethodDefinition<_tensormem_v1_GetWorkspaceRequest, _tensormem_v1_GetWorkspaceResponse, _tensormem_v1_GetWorkspaceRequest__Output, _tensormem_v1_GetWorkspaceResponse__Output>
  InitializeWorkspace: MethodDefinition<_tensormem_v1_InitializeWorkspaceRequest, _tensormem_v1_InitializeWorkspaceResponse, _tensormem_v1_InitializeWorkspaceRequest__Output, _tensormem_v1_InitializeWorkspaceResponse__Output>
  LeaveWorkspace: MethodDefinition<_tensormem_v1_LeaveWorkspaceRequest, _tensormem_v1_LeaveWorkspaceResponse, _tensormem_v1_LeaveWorkspaceRequest__Output, _tensormem_v1_LeaveWorkspaceResponse__Output>
  ListWorkspaces: MethodDefinition<_tensormem_v1_ListWorkspacesRequest, _tensormem_v1_ListWorkspacesResponse, _tensormem_v1_ListWorkspacesRequest__Output, _tensormem_v1_ListWorkspacesResponse__Output>
  ScopeOut: MethodDefinition<_tensormem_v1_ScopeOutRequest, _tensormem_v1_ScopeOutResponse, _tensormem_v1_ScopeOutRequest__Output, _tensormem_v1_ScopeOutResponse__Output>
}
