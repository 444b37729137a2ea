/**
 * --max-tenant-streams: streaming calls (WriteArray, ReadArray, KeepAlive, WatchMemory, and any other
 * call that streams) one tenant may have open at once, all its connections and leases together.
 *
 * An idle stream costs the daemon about 9 KB of heap and 13 KB of RSS (its HTTP/2 stream, the call's
 * objects: 3,000 idle WriteArray streams of one lease over four connections took 27 MB of heap and 38 MB
 * of RSS), and nothing else bounds how many one trainer keeps: --max-concurrent-streams caps a
 * connection, --max-connections the connections of an address, so one tenant with a lease could hold
 * 1,024 × 1,000 streams, over 10 GB, and the daemon, with every other tenant's memory, would die
 * first. Past the cap a new stream is refused before its handler runs: RESOURCE_EXHAUSTED, reason
 * TOO_MANY_STREAMS, with the numbers; the tenant's other calls, and other tenants, go on.
 *
 * The tenant is the one of the call's bearer token: a lease token's lease, or a tenant token of the
 * tenants file. Calls with no such token are not counted here: the admin token's, streams with no
 * token (health watches; WatchMemory in open mode), and tokens that open nothing, which their handler
 * refuses at once. Unary calls are not counted: they end by themselves.
 */
import { ServerInterceptingCall } from '@grpc/grpc-js';
import type { ServerInterceptor, StatusObject } from '@grpc/grpc-js';
import { TensormemError } from '../errors';
import { toServiceError } from './errors';
import { bearerToken } from './handlers';
import type { ServiceContext } from './service-context';

export interface TenantStreams {
  readonly interceptor: ServerInterceptor;
  /** Streams a tenant has open now (counted ones). */
  openOf(tenant: string): number;
}

/** The tenant a token speaks for, when it is a lease's or a tenant's (not the admin's). */
function tenantOfToken(context: ServiceContext, token: string | undefined): string | undefined {
  if (!token) return undefined;
  const lease = context.registry.leaseOfToken(token);
  if (lease) return lease.tenant;
  const tenant = context.tenants.match(token);
  return tenant && !tenant.admin ? tenant.name : undefined;
}

export function tooManyStreamsError(tenant: string, open: number, limit: number, method: string): TensormemError {
  return new TensormemError(
    'RESOURCE_EXHAUSTED',
    'TOO_MANY_STREAMS',
    `tenant "${tenant}" has ${open} streams open (WriteArray, ReadArray, KeepAlive, WatchMemory), the most --max-tenant-streams (${limit}) allows: ` +
      `${method} was refused; end or finish some of its streams first`,
    { tenant, open_streams: String(open), max_tenant_streams: String(limit) },
  );
}

/**
 * Counts each tenant's open streaming calls (tensormem_tenant_streams reads them) and refuses one past
 * `limit` (0 = no cap: they are still counted, none is refused). `onRefused` is told of each refusal.
 */
export function capTenantStreams(context: ServiceContext, limit: number, onRefused: (tenant: string, open: number) => void = () => {}): TenantStreams {
  const open = new Map<string, number>();
  const interceptor: ServerInterceptor = (method, call) => {
    // A unary call goes on unwrapped (grpc-js chains interceptors through the call interface only;
    // its type asks for the class): B1 pays nothing for the cap.
    // Without a cap the streams are still counted: the metric read 0 however many a tenant held open.
    if (!method.requestStream && !method.responseStream) return call as ServerInterceptingCall;
    let counted: string | undefined;
    const release = () => {
      if (counted === undefined) return;
      const left = open.get(counted)! - 1;
      if (left === 0) open.delete(counted);
      else open.set(counted, left);
      counted = undefined;
    };
    const intercepting: ServerInterceptingCall = new ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (metadata, passOn) => {
            const tenant = tenantOfToken(context, bearerToken(metadata));
            if (tenant !== undefined) {
              const now = open.get(tenant) ?? 0;
              if (limit > 0 && now >= limit) {
                onRefused(tenant, now);
                // The handler never starts: the metadata is not passed on.
                intercepting.sendStatus(toServiceError(tooManyStreamsError(tenant, now, limit, method.path)) as StatusObject);
                return;
              }
              open.set(tenant, now + 1);
              counted = tenant;
            }
            passOn(metadata);
          },
          onCancel: release,
        }),
      sendStatus: (status, next) => {
        release();
        next(status);
      },
    });
    return intercepting;
  };
  return { interceptor, openOf: (tenant) => open.get(tenant) ?? 0 };
}
