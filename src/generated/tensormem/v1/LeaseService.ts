// Original file: proto/tensormem/v1/lease.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { CloseLeaseRequest as _tensormem_v1_CloseLeaseRequest, CloseLeaseRequest__Output as _tensormem_v1_CloseLeaseRequest__Output } from '../../tensormem/v1/CloseLeaseRequest';
import type { CloseLeaseResponse as _tensormem_v1_CloseLeaseResponse, CloseLeaseResponse__Output as _tensormem_v1_CloseLeaseResponse__Output } from '../../tensormem/v1/CloseLeaseResponse';
import type { EvictLeaseRequest as _tensormem_v1_EvictLeaseRequest, EvictLeaseRequest__Output as _tensormem_v1_EvictLeaseRequest__Output } from '../../tensormem/v1/EvictLeaseRequest';
import type { EvictLeaseResponse as _tensormem_v1_EvictLeaseResponse, EvictLeaseResponse__Output as _tensormem_v1_EvictLeaseResponse__Output } from '../../tensormem/v1/EvictLeaseResponse';
import type { KeepAliveRequest as _tensormem_v1_KeepAliveRequest, KeepAliveRequest__Output as _tensormem_v1_KeepAliveRequest__Output } from '../../tensormem/v1/KeepAliveRequest';
import type { KeepAliveResponse as _tensormem_v1_KeepAliveResponse, KeepAliveResponse__Output as _tensormem_v1_KeepAliveResponse__Output } from '../../tensormem/v1/KeepAliveResponse';
import type { ListLeasesRequest as _tensormem_v1_ListLeasesRequest, ListLeasesRequest__Output as _tensormem_v1_ListLeasesRequest__Output } from '../../tensormem/v1/ListLeasesRequest';
import type { ListLeasesResponse as _tensormem_v1_ListLeasesResponse, ListLeasesResponse__Output as _tensormem_v1_ListLeasesResponse__Output } from '../../tensormem/v1/ListLeasesResponse';
import type { OpenLeaseRequest as _tensormem_v1_OpenLeaseRequest, OpenLeaseRequest__Output as _tensormem_v1_OpenLeaseRequest__Output } from '../../tensormem/v1/OpenLeaseRequest';
import type { OpenLeaseResponse as _tensormem_v1_OpenLeaseResponse, OpenLeaseResponse__Output as _tensormem_v1_OpenLeaseResponse__Output } from '../../tensormem/v1/OpenLeaseResponse';
import type { RenewLeaseRequest as _tensormem_v1_RenewLeaseRequest, RenewLeaseRequest__Output as _tensormem_v1_RenewLeaseRequest__Output } from '../../tensormem/v1/RenewLeaseRequest';
import type { RenewLeaseResponse as _tensormem_v1_RenewLeaseResponse, RenewLeaseResponse__Output as _tensormem_v1_RenewLeaseResponse__Output } from '../../tensormem/v1/RenewLeaseResponse';

export interface LeaseServiceClient extends grpc.Client {
  CloseLease(argument: _tensormem_v1_CloseLeaseRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_CloseLeaseResponse__Output>): grpc.ClientUnaryCall;
  CloseLease(argument: _tensormem_v1_CloseLeaseRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tensormem_v1_CloseLeaseResponse__Output>): grpc.ClientUnaryCall;
  CloseLease(argument: _tensormem_v1_CloseLeaseRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_CloseLeaseResponse__Output>): grpc.ClientUnaryCall;
  CloseLease(argument: _tensormem_v1_CloseLeaseRequest, callback: grpc.requestCallback<_tensormem_v1_CloseLeaseResponse__Output>): grpc.ClientUnaryCall;
  closeLease(argument: _tensormem_v1_CloseLeaseRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_CloseLeaseResponse__Output>): grpc.ClientUnaryCall;
  closeLease(argument: _tensormem_v1_CloseLeaseRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tensormem_v1_CloseLeaseResponse__Output>): grpc.ClientUnaryCall;
  closeLease(argument: _tensormem_v1_CloseLeaseRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_CloseLeaseResponse__Output>): grpc.ClientUnaryCall;
  closeLease(argument: _tensormem_v1_CloseLeaseRequest, callback: grpc.requestCallback<_tensormem_v1_CloseLeaseResponse__Output>): grpc.ClientUnaryCall;
  
  EvictLease(argument: _tensormem_v1_EvictLeaseRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_EvictLeaseResponse__Output>): grpc.ClientUnaryCall;
  EvictLease(argument: _tensormem_v1_EvictLeaseRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tensormem_v1_EvictLeaseResponse__Output>): grpc.ClientUnaryCall;
  EvictLease(argument: _tensormem_v1_EvictLeaseRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_EvictLeaseResponse__Output>): grpc.ClientUnaryCall;
  EvictLease(argument: _tensormem_v1_EvictLeaseRequest, callback: grpc.requestCallback<_tensormem_v1_EvictLeaseResponse__Output>): grpc.ClientUnaryCall;
  evictLease(argument: _tensormem_v1_EvictLeaseRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_EvictLeaseResponse__Output>): grpc.ClientUnaryCall;
  evictLease(argument: _tensormem_v1_EvictLeaseRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tensormem_v1_EvictLeaseResponse__Output>): grpc.ClientUnaryCall;
  evictLease(argument: _tensormem_v1_EvictLeaseRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_EvictLeaseResponse__Output>): grpc.ClientUnaryCall;
  evictLease(argument: _tensormem_v1_EvictLeaseRequest, callback: grpc.requestCallback<_tensormem_v1_EvictLeaseResponse__Output>): grpc.ClientUnaryCall;
  
  KeepAlive(metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<_tensormem_v1_KeepAliveRequest, _tensormem_v1_KeepAliveResponse__Output>;
  KeepAlive(options?: grpc.CallOptions): grpc.ClientDuplexStream<_tensormem_v1_KeepAliveRequest, _tensormem_v1_KeepAliveResponse__Output>;
  keepAlive(metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<_tensormem_v1_KeepAliveRequest, _tensormem_v1_KeepAliveResponse__Output>;
  keepAlive(options?: grpc.CallOptions): grpc.ClientDuplexStream<_tensormem_v1_KeepAliveRequest, _tensormem_v1_KeepAliveResponse__Output>;
  
  ListLeases(argument: _tensormem_v1_ListLeasesRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_ListLeasesResponse__Output>): grpc.ClientUnaryCall;
  ListLeases(argument: _tensormem_v1_ListLeasesRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tensormem_v1_ListLeasesResponse__Output>): grpc.ClientUnaryCall;
  ListLeases(argument: _tensormem_v1_ListLeasesRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_ListLeasesResponse__Output>): grpc.ClientUnaryCall;
  ListLeases(argument: _tensormem_v1_ListLeasesRequest, callback: grpc.requestCallback<_tensormem_v1_ListLeasesResponse__Output>): grpc.ClientUnaryCall;
  listLeases(argument: _tensormem_v1_ListLeasesRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_ListLeasesResponse__Output>): grpc.ClientUnaryCall;
  listLeases(argument: _tensormem_v1_ListLeasesRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tensormem_v1_ListLeasesResponse__Output>): grpc.ClientUnaryCall;
  listLeases(argument: _tensormem_v1_ListLeasesRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_ListLeasesResponse__Output>): grpc.ClientUnaryCall;
  listLeases(argument: _tensormem_v1_ListLeasesRequest, callback: grpc.requestCallback<_tensormem_v1_ListLeasesResponse__Output>): grpc.ClientUnaryCall;
  
  OpenLease(argument: _tensormem_v1_OpenLeaseRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_OpenLeaseResponse__Output>): grpc.ClientUnaryCall;
  OpenLease(argument: _tensormem_v1_OpenLeaseRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tensormem_v1_OpenLeaseResponse__Output>): grpc.ClientUnaryCall;
  OpenLease(argument: _tensormem_v1_OpenLeaseRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_OpenLeaseResponse__Output>): grpc.ClientUnaryCall;
  OpenLease(argument: _tensormem_v1_OpenLeaseRequest, callback: grpc.requestCallback<_tensormem_v1_OpenLeaseResponse__Output>): grpc.ClientUnaryCall;
  openLease(argument: _tensormem_v1_OpenLeaseRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_OpenLeaseResponse__Output>): grpc.ClientUnaryCall;
  openLease(argument: _tensormem_v1_OpenLeaseRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tensormem_v1_OpenLeaseResponse__Output>): grpc.ClientUnaryCall;
  openLease(argument: _tensormem_v1_OpenLeaseRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_OpenLeaseResponse__Output>): grpc.ClientUnaryCall;
  openLease(argument: _tensormem_v1_OpenLeaseRequest, callback: grpc.requestCallback<_tensormem_v1_OpenLeaseResponse__Output>): grpc.ClientUnaryCall;
  
  RenewLease(argument: _tensormem_v1_RenewLeaseRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_RenewLeaseResponse__Output>): grpc.ClientUnaryCall;
  RenewLease(argument: _tensormem_v1_RenewLeaseRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tensormem_v1_RenewLeaseResponse__Output>): grpc.ClientUnaryCall;
  RenewLease(argument: _tensormem_v1_RenewLeaseRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_RenewLeaseResponse__Output>): grpc.ClientUnaryCall;
  RenewLease(argument: _tensormem_v1_RenewLeaseRequest, callback: grpc.requestCallback<_tensormem_v1_RenewLeaseResponse__Output>): grpc.ClientUnaryCall;
  renewLease(argument: _tensormem_v1_RenewLeaseRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_RenewLeaseResponse__Output>): grpc.ClientUnaryCall;
  renewLease(argument: _tensormem_v1_RenewLeaseRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tensormem_v1_RenewLeaseResponse__Output>): grpc.ClientUnaryCall;
  renewLease(argument: _tensormem_v1_RenewLeaseRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tensormem_v1_RenewLeaseResponse__Output>): grpc.ClientUnaryCall;
  renewLease(argument: _tensormem_v1_RenewLeaseRequest, callback: grpc.requestCallback<_tensormem_v1_RenewLeaseResponse__Output>): grpc.ClientUnaryCall;
  
}

export interface LeaseServiceHandlers extends grpc.UntypedServiceImplementation {
  CloseLease: grpc.handleUnaryCall<_tensormem_v1_CloseLeaseRequest__Output, _tensormem_v1_CloseLeaseResponse>;
  
  EvictLease: grpc.handleUnaryCall<_tensormem_v1_EvictLeaseRequest__Output, _tensormem_v1_EvictLeaseResponse>;
  
  KeepAlive: grpc.handleBidiStreamingCall<_tensormem_v1_KeepAliveRequest__Output, _tensormem_v1_KeepAliveResponse>;
  
  ListLeases: grpc.handleUnaryCall<_tensormem_v1_ListLeasesRequest__Output, _tensormem_v1_ListLeasesResponse>;
  
  OpenLease: grpc.handleUnaryCall<_tensormem_v1_OpenLeaseRequest__Output, _tensormem_v1_OpenLeaseResponse>;
  
  RenewLease: grpc.handleUnaryCall<_tensormem_v1_RenewLeaseRequest__Output, _tensormem_v1_RenewLeaseResponse>;
  
}

export interface LeaseServiceDefinition extends grpc.ServiceDefinition {
  CloseLease: MethodDefinition<_tensormem_v1_CloseLeaseRequest, _tensormem_v1_CloseLeaseResponse, _tensormem_v1_CloseLeaseRequest__Output, _tensormem_v1_CloseLeaseResponse__Output>
  EvictLease: MethodDefinition<_tensormem_v1_EvictLeaseRequest, _tensormem_v1_EvictLeaseResponse, _tensormem_v1_EvictLeaseRequest__Output, _tensormem_v1_EvictLeaseResponse__Output>
  KeepAlive: MethodDefinition<_tensormem_v1_KeepAliveRequest, _tensormem_v1_KeepAliveResponse, _tensormem_v1_KeepAliveRequest__Output, _tensormem_v1_KeepAliveResponse__Output>
  ListLeases: MethodDefinition<_tensormem_v1_ListLeasesRequest, _tensormem_v1_ListLeasesResponse, _tensormem_v1_ListLeasesRequest__Output, _tensormem_v1_ListLeasesResponse__Output>
  OpenLease: MethodDefinition<_tensormem_v1_OpenLeaseRequest, _tensormem_v1_OpenLeaseResponse, _tensormem_v1_OpenLeaseRequest__Output, _tensormem_v1_OpenLeaseResponse__Output>
  RenewLease: MethodDefinition<_tensormem_v1_RenewLeaseRequest, _tensormem_v1_RenewLeaseResponse, _tensormem_v1_RenewLeaseRequest__Output, _tensormem_v1_RenewLeaseResponse__Output>
}
