/** What the services share: the registry, the memory, the configuration and the logger. */
import type { Logger } from 'pino';
import { TensormemError } from '../errors';
import type { DaemonConfig } from '../config/config';
import type { LeaseRegistry } from '../leases/lease-registry';
import type { TenantRegistry } from '../leases/tenant-registry';
import type { HeapGrowth } from '../heap-growth';
import type { MemoryManager } from '../memory/memory-manager';
import type { TransferCounters } from './transfer-counters';
import type { TlsFiles } from '../config/tls-server-options';

export interface ServiceContext {
  registry: LeaseRegistry;
  tenants: TenantRegistry;
  memory: MemoryManager;
  config: DaemonConfig;
  log: Logger;
  /**
   * Aborted when SIGTERM/SIGINT arrives and the daemon drains: new work is refused with UNAVAILABLE, and
   * streams with no end of their own (WatchMemory, KeepAlive, grpc.health.v1 Watch) end, so that they do
   * not hold the drain.
   */
  stopping: AbortSignal;
  /** --heap-growth, raised while bulk WriteArray/ReadArray streams are in flight (src/heap-growth.ts). */
  heapGrowth?: HeapGrowth;
  /** The HTTP data plane's address (http://HOST:PORT, https://HOST:PORT or unix:PATH) once bound; undefined when off. */
  dataAddress?: string;
  /** The data plane's connections once bound (metrics): open now, and refused for --data-max-connections since start. */
  dataPlaneConnections?: { readonly openConnections: number; readonly refusedTotal: number };
  /** gRPC connections (service/connection-cap.ts): open now, and closed for --max-connections since start. */
  grpcConnections?: { readonly openConnections: number; readonly refusedTotal: number };
  /** --max-tenant-streams (service/tenant-stream-cap.ts): each tenant's open streaming calls. */
  tenantStreams?: { openOf(tenant: string): number };
  /** --max-partial-message-bytes (service/partial-message-budget.ts): bytes of unfinished gRPC messages held, streams reset. */
  partialMessages?: { readonly heldBytes: number; readonly resetStreams: number };
  /** Bytes moved between clients and arrays over gRPC streams and the data plane (metrics); absent: not counted. */
  transfers?: TransferCounters;
  /** config.tls's files as read once for every listener (tlsFilesOf): set by the first that serves TLS. */
  tlsFiles?: TlsFiles;
}

/** What new work, waiting allocations and watch streams get once the daemon is draining. */
export function shuttingDownError(): TensormemError {
  return new TensormemError('UNAVAILABLE', 'SHUTTING_DOWN', 'tensormemd is shutting down');
}

/** What a call still in flight gets when the drain is cut short (`why`: the timeout passed, a second signal). */
export function drainCutError(why: string): TensormemError {
  return new TensormemError('UNAVAILABLE', 'SHUTTING_DOWN', `tensormemd is shutting down: ${why} with this call still in flight`);
}

/**
 * The admin calls' check (EvictLease, GetMemorySnapshot, the status page): an admin tenant token passes;
 * another tenant's token, or the token of a live lease (it authenticates its tenant), is
 * PERMISSION_DENIED; anything else UNAUTHENTICATED (TenantRegistry.requireAdmin).
 */
export function requireAdmin(context: ServiceContext, token: string | undefined): void {
  context.tenants.requireAdmin(token, (leaseToken) => context.registry.leaseOfToken(leaseToken));
}

/** New work (leases, allocations) is refused with UNAVAILABLE once the daemon is draining. */
export function refuseWhileDraining(context: ServiceContext): void {
  if (context.stopping.aborted) throw shuttingDownError();
}

/**
 * A stream that has no end of its own (a watch, a KeepAlive) ends when the daemon starts draining: after
 * the messages already written, by `end` (the caller's: its timers stopped, then an error made from
 * shuttingDownError()). Without this a `tensormemctl top`, a health watcher or a trainer's KeepAlive
 * held every SIGTERM for the whole --shutdown-timeout and the daemon logged `drained: false`.
 */
export function endWhenDraining(context: ServiceContext, call: { once(event: string, listener: () => void): unknown }, end: () => void): void {
  const { stopping } = context;
  if (stopping.aborted) return end();
  const forget = () => stopping.removeEventListener('abort', end);
  stopping.addEventListener('abort', end, { once: true });
  call.once('cancelled', forget);
  call.once('close', forget);
  call.once('error', forget);
  call.once('finish', forget);
}
