import type * as grpc from '@grpc/grpc-js';
import type { EnumTypeDefinition, MessageTypeDefinition } from '@grpc/proto-loader';

import type { Timestamp as _google_protobuf_Timestamp, Timestamp__Output as _google_protobuf_Timestamp__Output } from './google/protobuf/Timestamp';
import type { CloseLeaseRequest as _tensormem_v1_CloseLeaseRequest, CloseLeaseRequest__Output as _tensormem_v1_CloseLeaseRequest__Output } from './tensormem/v1/CloseLeaseRequest';
import type { CloseLeaseResponse as _tensormem_v1_CloseLeaseResponse, CloseLeaseResponse__Output as _tensormem_v1_CloseLeaseResponse__Output } from './tensormem/v1/CloseLeaseResponse';
import type { EvictLeaseRequest as _tensormem_v1_EvictLeaseRequest, EvictLeaseRequest__Output as _tensormem_v1_EvictLeaseRequest__Output } from './tensormem/v1/EvictLeaseRequest';
import type { EvictLeaseResponse as _tensormem_v1_EvictLeaseResponse, EvictLeaseResponse__Output as _tensormem_v1_EvictLeaseResponse__Output } from './tensormem/v1/EvictLeaseResponse';
import type { KeepAliveRequest as _tensormem_v1_KeepAliveRequest, KeepAliveRequest__Output as _tensormem_v1_KeepAliveRequest__Output } from './tensormem/v1/KeepAliveRequest';
import type { KeepAliveResponse as _tensormem_v1_KeepAliveResponse, KeepAliveResponse__Output as _tensormem_v1_KeepAliveResponse__Output } from './tensormem/v1/KeepAliveResponse';
import type { Lease as _tensormem_v1_Lease, Lease__Output as _tensormem_v1_Lease__Output } from './tensormem/v1/Lease';
import type { LeaseServiceClient as _tensormem_v1_LeaseServiceClient, LeaseServiceDefinition as _tensormem_v1_LeaseServiceDefinition } from './tensormem/v1/LeaseService';
import type { LeaseSummary as _tensormem_v1_LeaseSummary, LeaseSummary__Output as _tensormem_v1_LeaseSummary__Output } from './tensormem/v1/LeaseSummary';
import type { ListLeasesRequest as _tensormem_v1_ListLeasesRequest, ListLeasesRequest__Output as _tensormem_v1_ListLeasesRequest__Output } from './tensormem/v1/ListLeasesRequest';
import type { ListLeasesResponse as _tensormem_v1_ListLeasesResponse, ListLeasesResponse__Output as _tensormem_v1_ListLeasesResponse__Output } from './tensormem/v1/ListLeasesResponse';
import type { OpenLeaseRequest as _tensormem_v1_OpenLeaseRequest, OpenLeaseRequest__Output as _tensormem_v1_OpenLeaseRequest__Output } from './tensormem/v1/OpenLeaseRequest';
import type { OpenLeaseResponse as _tensormem_v1_OpenLeaseResponse, OpenLeaseResponse__Output as _tensormem_v1_OpenLeaseResponse__Output } from './tensormem/v1/OpenLeaseResponse';
import type { RenewLeaseRequest as _tensormem_v1_RenewLeaseRequest, RenewLeaseRequest__Output as _tensormem_v1_RenewLeaseRequest__Output } from './tensormem/v1/RenewLeaseRequest';
import type { RenewLeaseResponse as _tensormem_v1_RenewLeaseResponse, RenewLeaseResponse__Output as _tensormem_v1_RenewLeaseResponse__Output } from './tensormem/v1/RenewLeaseResponse';

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
      CloseLeaseRequest: MessageTypeDefinition<_tensormem_v1_CloseLeaseRequest, _tensormem_v1_CloseLeaseRequest__Output>
      CloseLeaseResponse: MessageTypeDefinition<_tensormem_v1_CloseLeaseResponse, _tensormem_v1_CloseLeaseResponse__Output>
      EvictLeaseRequest: MessageTypeDefinition<_tensormem_v1_EvictLeaseRequest, _tensormem_v1_EvictLeaseRequest__Output>
      EvictLeaseResponse: MessageTypeDefinition<_tensormem_v1_EvictLeaseResponse, _tensormem_v1_EvictLeaseResponse__Output>
      KeepAliveRequest: MessageTypeDefinition<_tensormem_v1_KeepAliveRequest, _tensormem_v1_KeepAliveRequest__Output>
      KeepAliveResponse: MessageTypeDefinition<_tensormem_v1_KeepAliveResponse, _tensormem_v1_KeepAliveResponse__Output>
      Lease: MessageTypeDefinition<_tensormem_v1_Lease, _tensormem_v1_Lease__Output>
      LeaseOrder: EnumTypeDefinition
      LeaseService: SubtypeConstructor<typeof grpc.Client, _tensormem_v1_LeaseServiceClient> & { service: _tensormem_v1_LeaseServiceDefinition }
      LeaseSummary: MessageTypeDefinition<_tensormem_v1_LeaseSummary, _tensormem_v1_LeaseSummary__Output>
      ListLeasesRequest: MessageTypeDefinition<_tensormem_v1_ListLeasesRequest, _tensormem_v1_ListLeasesRequest__Output>
      ListLeasesResponse: MessageTypeDefinition<_tensormem_v1_ListLeasesResponse, _tensormem_v1_ListLeasesResponse__Output>
      OpenLeaseRequest: MessageTypeDefinition<_tensormem_v1_OpenLeaseRequest, _tensormem_v1_OpenLeaseRequest__Output>
      OpenLeaseResponse: MessageTypeDefinition<_tensormem_v1_OpenLeaseResponse, _tensormem_v1_OpenLeaseResponse__Output>
      RenewLeaseRequest: MessageTypeDefinition<_tensormem_v1_RenewLeaseRequest, _tensormem_v1_RenewLeaseRequest__Output>
      RenewLeaseResponse: MessageTypeDefinition<_tensormem_v1_RenewLeaseResponse, _tensormem_v1_RenewLeaseResponse__Output>
    }
  }
}

