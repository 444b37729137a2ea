/** What the services share: the registry, the memory, the configuration and the logger. */
import type { Logger } from 'pino';
import { TensormemError } from '../errors';
import type { DaemonConfig } from '../config/config';
import type { LeaseRegistry } from '../leases/lease-registry';
import type { TenantRegistry } from '../leases/tenant-registry';
import type { HeapGrowth } from '../heap-growth';
import type { MemoryManager } from '../memory/memory-manager';

export interface ServiceContext {
  registry: LeaseRegistry;
  tenants: TenantRegistry;
  memory: MemoryManager;
  config: DaemonConfig;
  log: Logger;
  /** Set when SIGTERM/SIGINT arrives: new work is refused with UNAVAILABLE. */
  draining: boolean;
  /** --heap-growth, raised while bulk WriteArray/ReadArray streams are in flight (src/heap-growth.ts). */
  heapGrowth?: HeapGrowth;
  /** The HTTP data plane's address (http://HOST:PORT, https://HOST:PORT or unix:PATH) once bound; undefined when off. */
  dataAddress?: string;
}

/** New work (leases, allocations) is refused with UNAVAILABLE once the daemon is draining. */
export function refuseWhileDraining(context: ServiceContext): void {
  if (context.draining) throw new TensormemError('UNAVAILABLE', 'SHUTTING_DOWN', 'tensormemd is shutting down');
}
