/**
 * tensormemd's life: configuration → backend → limits → pools → leases → gRPC server, and the drain on
 * SIGTERM/SIGINT that refuses new work, lets calls in flight finish (up to --shutdown-timeout), then
 * frees every lease and every chunk.
 */
import pino, { Logger } from 'pino';
import type { DaemonConfig } from './config/config';
import { LeaseRegistry } from './leases/lease-registry';
import { resolveLimits } from './memory/limits';
import { MemoryManager } from './memory/memory-manager';
import { PhysicalMemoryGuard } from './memory/physical-memory-guard';
import { selectBackend } from './native/select-backend';
import { RunningServer, startServer } from './service/server';
import type { ServiceContext } from './service/service-context';
import { formatIec } from './units';

export interface Daemon {
  context: ServiceContext;
  running: RunningServer;
  shutdown(reason: string): Promise<void>;
}

export async function startDaemon(config: DaemonConfig, log: Logger = pino({ level: config.logLevel }, pino.destination(2))): Promise<Daemon> {
  const backend = selectBackend(config, log);
  const devices = Array.from({ length: backend.deviceCount() }, (_, index) => backend.deviceInfo(index));
  const limits = resolveLimits(config, backend.name, devices);
  let registry: LeaseRegistry | undefined;
  let memory: MemoryManager | undefined;
  const physical = new PhysicalMemoryGuard(limits.maxPhysicalBytes, () => {
    registry?.sweep();
    memory?.trim();
  });
  memory = new MemoryManager(backend, limits, { poolChunkBytes: config.poolChunkBytes, asyncCopyThresholdBytes: config.asyncCopyThresholdBytes }, physical);
  registry = new LeaseRegistry(memory, config.leaseTtlMs, config.mirror === 'eager', log);
  const context: ServiceContext = { registry, memory, config, log, draining: false };
  let running: RunningServer;
  try {
    running = await startServer(context);
  } catch (error) {
    memory.release();
    throw error;
  }
  registry.startSweeping(config.reclaimIntervalMs);
  log.info(
    {
      event: 'listening',
      addresses: running.addresses,
      backend: backend.name,
      devices: devices.map((device, index) => ({ index, name: device.name, totalBytes: device.totalBytes, maxBytes: limits.maxBytes[index] })),
      hostMaxBytes: limits.hostMaxBytes,
      maxPhysicalBytes: limits.maxPhysicalBytes,
    },
    `tensormemd serving on ${running.addresses.join(', ')} (backend ${backend.name}; ` +
      `maxbytes ${limits.maxBytes.map(formatIec).join(', ')}; host-maxbytes ${formatIec(limits.hostMaxBytes)}; maxphysicalbytes ${formatIec(limits.maxPhysicalBytes)})`,
  );
  log.warn({ event: 'open_mode' }, 'no tenants file: open mode, any local client may open leases');

  let stopping: Promise<void> | undefined;
  const shutdown = (reason: string): Promise<void> => {
    stopping ??= (async () => {
      context.draining = true;
      running.health.setStatus('', 'NOT_SERVING');
      log.info({ event: 'draining', reason, timeoutMs: config.shutdownTimeoutMs }, 'draining');
      const drained = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), config.shutdownTimeoutMs);
        running.server.tryShutdown(() => {
          clearTimeout(timer);
          resolve(true);
        });
      });
      if (!drained) running.server.forceShutdown();
      registry!.stopSweeping();
      const freedBytes = registry!.closeAll();
      memory!.release();
      log.info({ event: 'stopped', drained, freedBytes, liveChunks: backend.liveChunks() }, 'tensormemd stopped');
    })();
    return stopping;
  };
  return { context, running, shutdown };
}
