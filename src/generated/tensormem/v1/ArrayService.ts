// Original file: proto/tensormem/v1/array.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { AllocateArrayRequest as _tensormem_v1_AllocateArrayRequest, AllocateArrayRequest__Output as _tensormem_v1_AllocateArrayRequest__Output } from '../../tensormem/v1/AllocateArrayRequest';
import type { AllocateArrayResponse as _tensormem_v1_AllocateArrayResponse, AllocateArrayResponse__Output as _tensormem_v1_AllocateArrayResponse__Output } from '../../tensormem/v1/AllocateArrayResponse';
import type { DuplicateArrayRequest as _tensormem_v1_DuplicateArrayRequest, DuplicateArrayRequest__Output as _tensormem_v1_DuplicateArrayRequest__Output } from '../../tensormem/v1/DuplicateArrayRequest';
import type { DuplicateArrayResponse as _tensormem_v1_DuplicateArrayResponse, DuplicateArrayResponse__Output as _tensormem_v1_DuplicateArrayResponse__Output } from '../../tensormem/v1/DuplicateArrayResponse';
import type { ExportArrayRequest as _tensormem_v1_ExportArrayRequest, ExportArrayRequest__Output as _tensormem_v1_ExportArrayRequest__Output } from '../../tensormem/v1/ExportArrayRequest';
import type { ExportArrayResponse as _tensormem_v1_ExportArrayResponse, ExportArrayResponse__Output as _tensormem_v1_ExportArrayResponse__Output } from '../../tensormem/v1/ExportArrayResponse';
import type { FreeArrayRequest as _tensormem_v1_FreeArrayRequest, FreeArrayRequest__Output as _tensormem_v1_FreeArrayRequest__Output } from '../../tensormem/v1/FreeArrayRequest';
import type { FreeArrayResponse as _tensormem_v1_FreeArrayResponse, FreeArrayResponse__Output as _tensormem_v1_FreeArrayResponse__Output } from '../../tensormem/v1/FreeArrayResponse';
import type { GetArrayRequest as _tensormem_v1_GetArrayRequest, GetArrayRequest__Output as _tensormem_v1_GetArrayRequest__Output } from '../../tensormem/v1/GetArrayRequest';
import type { GetArrayResponse as _tensormem_v1_GetArrayResponse, GetArrayResponse__Output as _tensormem_v1_GetArrayResponse__Output } from '../../tensormem/v1/GetArrayResponse';
import type { ListArraysRequest as _tensormem_v1_ListArraysRequest, ListArraysRequest__Output as _tensormem_v1_ListArraysRequest__Output } from '../../tensormem/v1/ListArraysRequest';
import type { ListArraysResponse as _tensormem_v1_ListArraysResponse, ListArraysResponse__Output as _tensormem_v1_ListArraysResponse__Output } from '../../tensormem/v1/ListArraysResponse';
import type { ReadArrayRequest as _tensormem_v1_ReadArrayRequest, ReadArrayRequest__Output as _tensormem_v1_ReadArrayRequest__Output } from '../../tensormem/v1/ReadArrayRequest';
import type { ReadArrayResponse as _tensormem_v1_ReadArrayResponse, ReadArrayResponse__Output as _tensormem_v1_ReadArrayResponse__Output } from '../../tensormem/v1/ReadArrayResponse';
import type { SyncArrayRequest as _tensormem_v1_SyncArrayRequest, SyncArrayRequest__Output as _tensormem_v1_SyncArrayRequest__Output } from '../../tensormem/v1/SyncArrayRequest';
import type { SyncArrayResponse as _tensormem_v1_SyncArrayResponse, SyncArrayResponse__Output as _tensormem_v1_SyncArrayResponse__Output } from '../../tensormem/v1/SyncArrayResponse';
import type { WriteArrayRequest as _tensormem_v1_WriteArrayRequest, WriteArrayRequest__Output as _tensormem_v1_WriteArrayRequest__Output } from '../../tensormem/v1/WriteArrayRequest';
import type { WriteArrayResponse as _tensormem_v1_WriteArrayResponse, WriteArrayResponse__Output as _tensormem_v1_WriteArrayResponse__Output } from '../../tensormem/v1/WriteArrayResponse';

export interface ArrayServiceClient extends grpc.Client {
  AllocateArray(argument: _tensormem_v1_AllocateArrayRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_AllocateArrayResponse__Output>): grpc.ClientUnaryCall;
  AllocateArray(argument: _tensormem_v1_AllocateArrayRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tensormem_v1_AllocateArrayResponse__Output>): grpc.ClientUnaryCall;
  AllocateArray(argument: _tensormem_v1_AllocateArrayRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_AllocateArrayResponse__Output>): grpc.ClientUnaryCall;
  AllocateArray(argument: _tensormem_v1_AllocateArrayRequest, callback: grpc.requestCallback<_tensormem_v1_AllocateArrayResponse__Output>): grpc.ClientUnaryCall;
  allocateArray(argument: _tensormem_v1_AllocateArrayRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_AllocateArrayResponse__Output>): grpc.ClientUnaryCall;
  allocateArray(argument: _tensormem_v1_AllocateArrayRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tensormem_v1_AllocateArrayResponse__Output>): grpc.ClientUnaryCall;
  allocateArray(argument: _tensormem_v1_AllocateArrayRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_AllocateArrayResponse__Output>): grpc.ClientUnaryCall;
  allocateArray(argument: _tensormem_v1_AllocateArrayRequest, callback: grpc.requestCallback<_tensormem_v1_AllocateArrayResponse__Output>): grpc.ClientUnaryCall;
  
  DuplicateArray(argument: _tensormem_v1_DuplicateArrayRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_DuplicateArrayResponse__Output>): grpc.ClientUnaryCall;
  DuplicateArray(argument: _tensormem_v1_DuplicateArrayRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tensormem_v1_DuplicateArrayResponse__Output>): grpc.ClientUnaryCall;
  DuplicateArray(argument: _tensormem_v1_DuplicateArrayRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_DuplicateArrayResponse__Output>): grpc.ClientUnaryCall;
  DuplicateArray(argument: _tensormem_v1_DuplicateArrayRequest, callback: grpc.requestCallback<_tensormem_v1_DuplicateArrayResponse__Output>): grpc.ClientUnaryCall;
  duplicateArray(argument: _tensormem_v1_DuplicateArrayRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_DuplicateArrayResponse__Output>): grpc.ClientUnaryCall;
  duplicateArray(argument: _tensormem_v1_DuplicateArrayRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tensormem_v1_DuplicateArrayResponse__Output>): grpc.ClientUnaryCall;
  duplicateArray(argument: _tensormem_v1_DuplicateArrayRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_DuplicateArrayResponse__Output>): grpc.ClientUnaryCall;
  duplicateArray(argument: _tensormem_v1_DuplicateArrayRequest, callback: grpc.requestCallback<_tensormem_v1_DuplicateArrayResponse__Output>): grpc.ClientUnaryCall;
  
  ExportArray(argument: _tensormem_v1_ExportArrayRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_ExportArrayResponse__Output>): grpc.ClientUnaryCall;
  ExportArray(argument: _tensormem_v1_ExportArrayRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tensormem_v1_ExportArrayResponse__Output>): grpc.ClientUnaryCall;
  ExportArray(argument: _tensormem_v1_ExportArrayRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_ExportArrayResponse__Output>): grpc.ClientUnaryCall;
  ExportArray(argument: _tensormem_v1_ExportArrayRequest, callback: grpc.requestCallback<_tensormem_v1_ExportArrayResponse__Output>): grpc.ClientUnaryCall;
  exportArray(argument: _tensormem_v1_ExportArrayRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_ExportArrayResponse__Output>): grpc.ClientUnaryCall;
  exportArray(argument: _tensormem_v1_ExportArrayRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tensormem_v1_ExportArrayResponse__Output>): grpc.ClientUnaryCall;
  exportArray(argument: _tensormem_v1_ExportArrayRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_ExportArrayResponse__Output>): grpc.ClientUnaryCall;
  exportArray(argument: _tensormem_v1_ExportArrayRequest, callback: grpc.requestCallback<_tensormem_v1_ExportArrayResponse__Output>): grpc.ClientUnaryCall;
  
  FreeArray(argument: _tensormem_v1_FreeArrayRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_FreeArrayResponse__Output>): grpc.ClientUnaryCall;
  FreeArray(argument: _tensormem_v1_FreeArrayRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tensormem_v1_FreeArrayResponse__Output>): grpc.ClientUnaryCall;
  FreeArray(argument: _tensormem_v1_FreeArrayRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_FreeArrayResponse__Output>): grpc.ClientUnaryCall;
  FreeArray(argument: _tensormem_v1_FreeArrayRequest, callback: grpc.requestCallback<_tensormem_v1_FreeArrayResponse__Output>): grpc.ClientUnaryCall;
  freeArray(argument: _tensormem_v1_FreeArrayRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_FreeArrayResponse__Output>): grpc.ClientUnaryCall;
  freeArray(argument: _tensormem_v1_FreeArrayRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tensormem_v1_FreeArrayResponse__Output>): grpc.ClientUnaryCall;
  freeArray(argument: _tensormem_v1_FreeArrayRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_FreeArrayResponse__Output>): grpc.ClientUnaryCall;
  freeArray(argument: _tensormem_v1_FreeArrayRequest, callback: grpc.requestCallback<_tensormem_v1_FreeArrayResponse__Output>): grpc.ClientUnaryCall;
  
  GetArray(argument: _tensormem_v1_GetArrayRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_GetArrayResponse__Output>): grpc.ClientUnaryCall;
  GetArray(argument: _tensormem_v1_GetArrayRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tensormem_v1_GetArrayResponse__Output>): grpc.ClientUnaryCall;
  GetArray(argument: _tensormem_v1_GetArrayRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_GetArrayResponse__Output>): grpc.ClientUnaryCall;
  GetArray(argument: _tensormem_v1_GetArrayRequest, callback: grpc.requestCallback<_tensormem_v1_GetArrayResponse__Output>): grpc.ClientUnaryCall;
  getArray(argument: _tensormem_v1_GetArrayRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_GetArrayResponse__Output>): grpc.ClientUnaryCall;
  getArray(argument: _tensormem_v1_GetArrayRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tensormem_v1_GetArrayResponse__Output>): grpc.ClientUnaryCall;
  getArray(argument: _tensormem_v1_GetArrayRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_GetArrayResponse__Output>): grpc.ClientUnaryCall;
  getArray(argument: _tensormem_v1_GetArrayRequest, callback: grpc.requestCallback<_tensormem_v1_GetArrayResponse__Output>): grpc.ClientUnaryCall;
  
  ListArrays(argument: _tensormem_v1_ListArraysRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_ListArraysResponse__Output>): grpc.ClientUnaryCall;
  ListArrays(argument: _tensormem_v1_ListArraysRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tensormem_v1_ListArraysResponse__Output>): grpc.ClientUnaryCall;
  ListArrays(argument: _tensormem_v1_ListArraysRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_ListArraysResponse__Output>): grpc.ClientUnaryCall;
  ListArrays(argument: _tensormem_v1_ListArraysRequest, callback: grpc.requestCallback<_tensormem_v1_ListArraysResponse__Output>): grpc.ClientUnaryCall;
  listArrays(argument: _tensormem_v1_ListArraysRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_ListArraysResponse__Output>): grpc.ClientUnaryCall;
  listArrays(argument: _tensormem_v1_ListArraysRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tensormem_v1_ListArraysResponse__Output>): grpc.ClientUnaryCall;
  listArrays(argument: _tensormem_v1_ListArraysRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_ListArraysResponse__Output>): grpc.ClientUnaryCall;
  listArrays(argument: _tensormem_v1_ListArraysRequest, callback: grpc.requestCallback<_tensormem_v1_ListArraysResponse__Output>): grpc.ClientUnaryCall;
  
  ReadArray(argument: _tensormem_v1_ReadArrayRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_tensormem_v1_ReadArrayResponse__Output>;
  ReadArray(argument: _tensormem_v1_ReadArrayRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_tensormem_v1_ReadArrayResponse__Output>;
  readArray(argument: _tensormem_v1_ReadArrayRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_tensormem_v1_ReadArrayResponse__Output>;
  readArray(argument: _tensormem_v1_ReadArrayRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_tensormem_v1_ReadArrayResponse__Output>;
  
  SyncArray(argument: _tensormem_v1_SyncArrayRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_SyncArrayResponse__Output>): grpc.ClientUnaryCall;
  SyncArray(argument: _tensormem_v1_SyncArrayRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tensormem_v1_SyncArrayResponse__Output>): grpc.ClientUnaryCall;
  SyncArray(argument: _tensormem_v1_SyncArrayRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_SyncArrayResponse__Output>): grpc.ClientUnaryCall;
  SyncArray(argument: _tensormem_v1_SyncArrayRequest, callback: grpc.requestCallback<_tensormem_v1_SyncArrayResponse__Output>): grpc.ClientUnaryCall;
  syncArray(argument: _tensormem_v1_SyncArrayRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_SyncArrayResponse__Output>): grpc.ClientUnaryCall;
  syncArray(argument: _tensormem_v1_SyncArrayRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tensormem_v1_SyncArrayResponse__Output>): grpc.ClientUnaryCall;
  syncArray(argument: _tensormem_v1_SyncArrayRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_SyncArrayResponse__Output>): grpc.ClientUnaryCall;
  syncArray(argument: _tensormem_v1_SyncArrayRequest, callback: grpc.requestCallback<_tensormem_v1_SyncArrayResponse__Output>): grpc.ClientUnaryCall;
  
  WriteArray(metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_WriteArrayResponse__Output>): grpc.ClientWritableStream<_tensormem_v1_WriteArrayRequest>;
  WriteArray(metadata: grpc.Metadata, callback: grpc.requestCallback<_tensormem_v1_WriteArrayResponse__Output>): grpc.ClientWritableStream<_tensormem_v1_WriteArrayRequest>;
  WriteArray(options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_WriteArrayResponse__Output>): grpc.ClientWritableStream<_tensormem_v1_WriteArrayRequest>;
  WriteArray(callback: grpc.requestCallback<_tensormem_v1_WriteArrayResponse__Output>): grpc.ClientWritableStream<_tensormem_v1_WriteArrayRequest>;
  writeArray(metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_WriteArrayResponse__Output>): grpc.ClientWritableStream<_tensormem_v1_WriteArrayRequest>;
  writeArray(metadata: grpc.Metadata, callback: grpc.requestCallback<_tensormem_v1_WriteArrayResponse__Output>): grpc.ClientWritableStream<_tensormem_v1_WriteArrayRequest>;
  writeArray(options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_WriteArrayResponse__Output>): grpc.ClientWritableStream<_tensormem_v1_WriteArrayRequest>;
  writeArray(callback: grpc.requestCallback<_tensormem_v1_WriteArrayResponse__Output>): grpc.ClientWritableStream<_tensormem_v1_WriteArrayRequest>;
  
}

export interface ArrayServiceHandlers extends grpc.UntypedServiceImplementation {
  AllocateArray: grpc.handleUnaryCall<_tensormem_v1_AllocateArrayRequest__Output, _tensormem_v1_AllocateArrayResponse>;
  
  DuplicateArray: grpc.handleUnaryCall<_tensormem_v1_DuplicateArrayRequest__Output, _tensormem_v1_DuplicateArrayResponse>;
  
  ExportArray: grpc.handleUnaryCall<_tensormem_v1_ExportArrayRequest__Output, _tensormem_v1_ExportArrayResponse>;
  
  FreeArray: grpc.handleUnaryCall<_tensormem_v1_FreeArrayRequest__Output, _tensormem_v1_FreeArrayResponse>;
  
  GetArray: grpc.handleUnaryCall<_tensormem_v1_GetArrayRequest__Output, _tensormem_v1_GetArrayResponse>;
  
  ListArrays: grpc.handleUnaryCall<_tensormem_v1_ListArraysRequest__Output, _tensormem_v1_ListArraysResponse>;
  
  ReadArray: grpc.handleServerStreamingCall<_tensormem_v1_ReadArrayRequest__Output, _tensormem_v1_ReadArrayResponse>;
  
  SyncArray: grpc.handleUnaryCall<_tensormem_v1_SyncArrayRequest__Output, _tensormem_v1_SyncArrayResponse>;
  
  WriteArray: grpc.handleClientStreamingCall<_tensormem_v1_WriteArrayRequest__Output, _tensormem_v1_WriteArrayResponse>;
  
}

export interface ArrayServiceDefinition extends grpc.ServiceDefinition {
  AllocateArray: MethodDefinition<_tensormem_v1_AllocateArrayRequest, _tensormem_v1_AllocateArrayResponse, _tensormem_v1_AllocateArrayRequest__Output, _tensormem_v1_AllocateArrayResponse__Output>
  DuplicateArray: MethodDefinition<_tensormem_v1_DuplicateArrayRequest, _tensormem_v1_DuplicateArrayResponse, _tensormem_v1_DuplicateArrayRequest__Output, _tensormem_v1_DuplicateArrayResponse__Output>
  ExportArray: MethodDefinition<_tensormem_v1_ExportArrayRequest, _tensormem_v1_ExportArrayResponse, _tensormem_v1_ExportArrayRequest__Output, _tensormem_v1_ExportArrayResponse__Output>
  FreeArray: MethodDefinition<_tensormem_v1_FreeArrayRequest, _tensormem_v1_FreeArrayResponse, _tensormem_v1_FreeArrayRequest__Output, _tensormem_v1_FreeArrayResponse__Output>
  GetArray: MethodDefinition<_tensormem_v1_GetArrayRequest, _tensormem_v1_GetArrayResponse, _tensormem_v1_GetArrayRequest__Output, _tensormem_v1_GetArrayResponse__Output>
  ListArrays: MethodDefinition<_tensormem_v1_ListArraysRequest, _tensormem_v1_ListArraysResponse, _tensormem_v1_ListArraysRequest__Output, _tensormem_v1_ListArraysResponse__Output>
  ReadArray: MethodDefinition<_tensormem_v1_ReadArrayRequest, _tensormem_v1_ReadArrayResponse, _tensormem_v1_ReadArrayRequest__Output, _tensormem_v1_ReadArrayResponse__Output>
  SyncArray: MethodDefinition<_tensormem_v1_SyncArrayRequest, _tensormem_v1_SyncArrayResponse, _tensormem_v1_SyncArrayRequest__Output, _tensormem_v1_SyncArrayResponse__Output>
  WriteArray: MethodDefinition<_tensormem_v1_WriteArrayRequest, _tensormem_v1_WriteArrayResponse, _tensormem_v1_WriteArrayRequest__Output, _tensormem_v1_WriteArrayResponse__Output>
}
