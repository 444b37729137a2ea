/** tensormem.v1.LeaseService. */
import type { Server, ServerDuplexStream } from '@grpc/grpc-js';
import { TensormemError, invalidArgument } from '../errors';
import type { Lease } from '../leases/lease';
import type { LeaseServiceHandlers } from '../generated/tensormem/v1/LeaseService';
import type { Lease as LeaseMessage } from '../generated/tensormem/v1/Lease';
import type { LeaseSummary } from '../generated/tensormem/v1/LeaseSummary';
import type { KeepAliveRequest__Output } from '../generated/tensormem/v1/KeepAliveRequest';
import type { KeepAliveResponse } from '../generated/tensormem/v1/KeepAliveResponse';
import { toServiceError } from './errors';
import { bearerToken, timestamp, unary } from './handlers';
import { loadTensormemProto } from './proto';
import type { ServiceContext } from './service-context';

const MAX_NAME_LENGTH = 256;

export function leaseMessage(lease: Lease, token = ''): LeaseMessage {
  return {
    lease_id: lease.leaseId,
    token,
    ttl_seconds: Math.round(lease.ttlMs / 1000),
    expires_at: timestamp(lease.expiresAtMs),
    tenant: lease.tenant,
    client_name: lease.clientName,
  };
}

export function leaseSummary(lease: Lease): LeaseSummary {
  return {
    lease_id: lease.leaseId,
    tenant: lease.tenant,
    client_name: lease.clientName,
    labels: lease.labels,
    created_at: timestamp(lease.createdAt),
    expires_at: timestamp(lease.expiresAtMs),
    age_seconds: Math.floor((Date.now() - lease.createdAt.getTime()) / 1000),
    device_bytes: lease.deviceBytes(),
    host_bytes: lease.hostBytes(),
    array_count: lease.arrays.size,
    ttl_seconds: Math.round(lease.ttlMs / 1000),
  };
}

function checkName(field: string, value: string): void {
  if (value.length > MAX_NAME_LENGTH) throw invalidArgument(field, `at most ${MAX_NAME_LENGTH} characters`, `${value.length} characters`);
}

export class LeaseService {
  constructor(private readonly context: ServiceContext) {}

  addToServer(server: Server): void {
    const { proto } = loadTensormemProto();
    const { registry, log } = this.context;
    const handlers: LeaseServiceHandlers = {
      OpenLease: unary(log, (call) => {
        if (this.context.draining) throw new TensormemError('UNAVAILABLE', 'SHUTTING_DOWN', 'tensormemd is shutting down');
        const request = call.request;
        checkName('tenant', request.tenant);
        checkName('client_name', request.client_name);
        const { lease, token } = registry.open({ tenant: request.tenant, clientName: request.client_name, ttlSeconds: request.ttl_seconds, labels: request.labels });
        return { lease: leaseMessage(lease, token) };
      }),
      RenewLease: unary(log, (call) => {
        const lease = registry.resolve(registry.authenticate(bearerToken(call.metadata)), call.request.lease_id);
        registry.renew(lease, call.request.ttl_seconds);
        return { lease: leaseMessage(lease) };
      }),
      CloseLease: unary(log, (call) => {
        const lease = registry.resolve(registry.authenticate(bearerToken(call.metadata)), call.request.lease_id);
        return { freed_bytes: registry.close(lease, 'closed') };
      }),
      ListLeases: unary(log, (call) => {
        const token = bearerToken(call.metadata);
        // With a lease token: that lease only. Without one (open mode): every lease.
        const leases = token ? [registry.authenticate(token)] : registry.list();
        return { leases: leases.map(leaseSummary) };
      }),
      KeepAlive: (call: ServerDuplexStream<KeepAliveRequest__Output, KeepAliveResponse>) => {
        call.on('data', (request: KeepAliveRequest__Output) => {
          try {
            const lease = registry.resolve(registry.authenticate(bearerToken(call.metadata)), request.lease_id);
            registry.renew(lease, 0);
            call.write({ lease_id: lease.leaseId, expires_at: timestamp(lease.expiresAtMs), ttl_seconds: Math.round(lease.ttlMs / 1000) });
          } catch (error) {
            call.emit('error', toServiceError(error, log));
          }
        });
        call.on('end', () => call.end());
        call.on('error', () => {});
      },
    };
    server.addService(proto.tensormem.v1.LeaseService.service, handlers);
  }
}
