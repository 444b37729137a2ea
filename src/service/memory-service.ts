/** tensormem.v1.MemoryService: what the daemon holds, per pool, process and tenant. */
import { totalmem } from 'node:os';
import { getHeapStatistics } from 'node:v8';
import type { Server, ServerWritableStream } from '@grpc/grpc-js';
import type { MemoryServiceHandlers } from '../generated/tensormem/v1/MemoryService';
import type { MemoryInfo } from '../generated/tensormem/v1/MemoryInfo';
import type { MemorySnapshot } from '../generated/tensormem/v1/MemorySnapshot';
import type { ConfigValue } from '../generated/tensormem/v1/ConfigValue';
import type { WatchMemoryRequest__Output } from '../generated/tensormem/v1/WatchMemoryRequest';
import type { WatchMemoryResponse } from '../generated/tensormem/v1/WatchMemoryResponse';
import { FLAGS } from '../config/flags';
import { parseSize, resolveSize } from '../config/sizes';
import { cudnnLibrary } from '../memory/cudnn-library';
import type { SegmentSnapshot } from '../memory/memory-resource';
import { invalidArgument } from '../errors';
import { TENANT_OR_LEASE_TOKEN } from '../leases/lease-registry';
import { setLongInterval } from '../long-timeout';
import { packageVersion } from '../package-root';
import { toServiceError } from './errors';
import { PreEncoded, encodeMemorySnapshot } from './snapshot-encoder';
import { bearerToken, timestamp, unary } from './handlers';
import { loadTensormemProto } from './proto';
import { requireWellFormed, tolerantDeserializers } from './malformed';
import { endWhenDraining, requireAdmin, shuttingDownError, type ServiceContext } from './service-context';

export const MIN_WATCH_INTERVAL_MS = 50;

/**
 * How long one viewer's WatchMemory message, made and encoded once, serves every stream of that viewer
 * whose tick comes: under half of MIN_WATCH_INTERVAL_MS, so that no stream is sent the same message
 * twice (its taken_at says when it was made).
 */
export const WATCH_SHARE_MS = 20;

/**
 * The WatchMemory messages of the last WATCH_SHARE_MS, encoded, by viewer (a tenant's view, or
 * undefined for every tenant's). Streams' ticks each made and encoded their own MemoryInfo: with a
 * thousand streams of an admin over 500 tenants, about 1 ms each, one second's ticks held the event
 * loop for a second (every other call waited) and most messages were skipped.
 */
export class WatchMessages {
  private readonly byViewer = new Map<string | undefined, { madeAt: number; message: PreEncoded }>();

  constructor(
    private readonly make: (viewer: { tenant?: string }) => PreEncoded,
    private readonly now: () => number = () => performance.now(),
  ) {}

  messageFor(viewer: { tenant?: string }): PreEncoded {
    const now = this.now();
    const shared = this.byViewer.get(viewer.tenant);
    if (shared !== undefined && now - shared.madeAt < WATCH_SHARE_MS) return shared.message;
    // Entries of viewers no stream asks for any more go (at most one a tenant is kept).
    if (this.byViewer.size >= 64) for (const [key, entry] of this.byViewer) if (now - entry.madeAt >= WATCH_SHARE_MS) this.byViewer.delete(key);
    const message = this.make(viewer);
    this.byViewer.set(viewer.tenant, { madeAt: now, message });
    return message;
  }
}

/** Who is asking: every tenant row (open mode, admin) or one tenant's. UNAUTHENTICATED without a valid token under a tenants file. */
export function viewerOf(context: ServiceContext, token: string | undefined): { tenant?: string } {
  const { tenants, registry } = context;
  if (tenants.openMode) return {};
  const tenant = tenants.match(token);
  if (tenant) return tenant.admin ? {} : { tenant: tenant.name };
  return { tenant: registry.authenticate(token, TENANT_OR_LEASE_TOKEN).tenant };
}

export function memoryInfo(context: ServiceContext, viewer: { tenant?: string } = {}): MemoryInfo {
  const { memory, registry, tenants } = context;
  const host = memory.hostReport();
  const heap = getHeapStatistics();
  // Tenants outside the tenants file that hold nothing and have no lease leave the report (and /metrics).
  memory.tenants.releaseAllIdle((tenant) => registry.countOf(tenant) > 0);
  // A tenant's view looks its own row up: a copy of every tenant's lease count and account name made for
  // one row cost 0.4 µs a tenant (10,000 tenants: 4.1 ms a call).
  const tenantNames =
    viewer.tenant === undefined
      ? new Set([...memory.tenants.names(), ...registry.tenantsWithLeases()])
      : new Set(viewer.tenant !== '' && (memory.tenants.has(viewer.tenant) || registry.countOf(viewer.tenant) > 0) ? [viewer.tenant] : []);
  return {
    backend: memory.backendName,
    devices: memory.deviceReports().map((device) => ({
      device: device.device,
      name: device.name,
      total_bytes: device.totalBytes,
      free_bytes: device.freeBytes,
      max_bytes: device.maxBytes,
      reserved_bytes: device.reservedBytes,
      used_bytes: device.usedBytes,
      peak_used_bytes: device.peakUsedBytes,
      largest_free_block_bytes: device.largestFreeBlockBytes,
      allocation_count: device.allocationCount,
      allocations_total: device.allocationsTotal,
      failed_allocations_total: device.failedAllocationsTotal,
      waiting_allocations: device.waitingAllocations,
    })),
    host: {
      max_bytes: host.maxBytes,
      used_bytes: host.usedBytes,
      mirror_bytes: host.mirrorBytes,
      host_only_bytes: host.hostOnlyBytes,
      mmap_bytes: host.mmapBytes,
      reserved_bytes: host.reservedBytes,
      peak_used_bytes: host.peakUsedBytes,
      largest_free_block_bytes: host.largestFreeBlockBytes,
      allocation_count: host.allocationCount,
      allocations_total: host.allocationsTotal,
      failed_allocations_total: host.failedAllocationsTotal,
      mmap_max_bytes: host.mmapMaxBytes,
    },
    process: {
      physical_bytes: memory.physical.physicalBytes(),
      max_physical_bytes: memory.physical.maxPhysicalBytes,
      counted_physical_bytes: memory.physical.countedBytes(),
      heap_used_bytes: heap.used_heap_size,
      heap_limit_bytes: heap.heap_size_limit,
    },
    tenants: [...tenantNames].sort().map((tenant) => {
      const usage = memory.tenants.usage(tenant);
      const deviceBytes = usage.deviceBytes.reduce((sum, bytes) => sum + bytes, 0);
      return {
        tenant,
        used_bytes: deviceBytes + usage.hostBytes,
        quota_bytes: usage.deviceQuotaBytes,
        leases: registry.countOf(tenant),
        device_used_bytes: deviceBytes,
        host_used_bytes: usage.hostBytes,
        host_quota_bytes: usage.hostQuotaBytes,
        guarantee_bytes: usage.deviceGuaranteeBytes,
        max_leases: tenants.maxLeasesOf(tenant),
        device_used_bytes_by_device: usage.deviceBytes,
        mmap_used_bytes: usage.mmapBytes,
        mmap_quota_bytes: usage.mmapQuotaBytes,
        arrays: usage.arrays,
        max_arrays: usage.maxArrays,
        mapped_regions: usage.mappedRegions,
        max_mapped_regions: usage.maxMappedRegions,
        dropped: tenants.isDropped(tenant),
        evicting: registry.isEvicting(tenant),
      };
    }),
    taken_at: timestamp(Date.now()),
  };
}

/** A block of a snapshot as MemorySnapshot carries it: where, how big, and who holds it. */
export function blockInfo(block: SegmentSnapshot['blocks'][number]) {
  return {
    offset: block.offset,
    bytes: block.bytes,
    free: block.free,
    lease_id: block.owner?.leaseId ?? '',
    tenant: block.owner?.tenant ?? '',
    array_id: block.owner?.arrayId ?? '',
    workspace_id: block.owner?.workspaceId ?? '',
    label: block.owner?.label ?? '',
    purpose: block.owner?.purpose ?? '',
  };
}

/**
 * Every flag's effective value and its source: "flag", "env", "file", "profile:NAME", "default" (left
 * at its default, which for a flag without one is the empty value: unset, off), or "derived" (computed
 * from other values: the caps resolved in src/memory/limits.ts when not set — --maxbytes from the
 * device's memory less --device-reserve, the reserve from the device's size, --maxphysicalbytes from
 * --host-maxbytes and the V8 heap —, --heap-reserve from the V8 heap limit, and --chunk-bytes when
 * its default shrank to fit --max-message-bytes), plus cudnn_version.
 */
export function configValues(context: ServiceContext): ConfigValue[] {
  const { config, memory } = context;
  const limits = memory.limits;
  const values: ConfigValue[] = [];
  for (const flag of FLAGS) {
    if (flag.name === 'help' || flag.name === 'version') continue;
    let value = config.rawValues[flag.name] ?? '';
    let source: string = config.sources[flag.name] ?? 'default';
    // A default that loading changed to fit other values (--chunk-bytes under --max-message-bytes).
    if (source === 'default' && flag.default !== undefined && value !== flag.default) source = 'derived';
    if (flag.name === 'maxbytes') value = limits.maxBytes.join(',');
    if (flag.name === 'device-reserve') value = limits.deviceReserveBytes.join(',');
    if (flag.name === 'host-maxbytes') value = String(limits.hostMaxBytes);
    if (flag.name === 'maxphysicalbytes') value = String(limits.maxPhysicalBytes);
    if (flag.name in limits.sources) source = limits.sources[flag.name as keyof typeof limits.sources];
    // Unset, --heap-reserve is resolved against the V8 heap limit (memory/heap-guard.ts defaultHeapReserve).
    if (flag.name === 'heap-reserve' && value === '' && memory.heapReserveBytes !== undefined) {
      value = String(memory.heapReserveBytes);
      source = 'derived';
    }
    // Unset, --mmap-dir is tensormem-mmap in the OS temp folder (memory/mmap-files.ts defaultMmapDir): show
    // the folder the MMAP workspace files go to, as for any other default.
    if (flag.name === 'mmap-dir' && value === '') value = memory.mmapFiles.root;
    if (flag.name === 'backend') value = `${config.rawValues.backend} (using ${memory.backendName})`;
    // ConfigValue.value gives sizes in bytes, however they were written (64M, 256K, 25% of RAM): a client
    // reads them as integers. The caps above are bytes already (maxbytes, device-reserve: one per device).
    if (flag.type === 'size' && value !== '' && !/^\d+(,\d+)*$/.test(value)) {
      value = String(resolveSize(parseSize(value, flag.name, flag.percentOf !== undefined), totalmem()));
    }
    values.push({ name: flag.name, value, source, seed_name: flag.seedName ?? '' });
  }
  values.push({ name: 'cudnn_version', value: cudnnLibrary(config.rawValues['cudnn-library']).describe, source: 'derived', seed_name: '' });
  return values;
}

export class MemoryService {
  constructor(private readonly context: ServiceContext) {}

  addToServer(server: Server): void {
    const { proto } = loadTensormemProto();
    const { log, memory } = this.context;
    const serializeWatch = proto.tensormem.v1.MemoryService.service.WatchMemory.responseSerialize as (value: WatchMemoryResponse) => Buffer;
    const watchMessages = new WatchMessages((viewer) => new PreEncoded(serializeWatch({ info: memoryInfo(this.context, viewer) })));
    const handlers: MemoryServiceHandlers = {
      GetMemoryInfo: unary(log, (call) => ({ info: memoryInfo(this.context, viewerOf(this.context, bearerToken(call.metadata))) })),
      GetMemorySnapshot: unary(log, (call) => {
        requireAdmin(this.context, bearerToken(call.metadata));
        // Encoded here, a slice of blocks per turn of the event loop (snapshot-encoder.ts), not by
        // protobufjs in one go: the serializer sends the bytes as they are.
        const serialize = proto.tensormem.v1.MemoryService.service.GetMemorySnapshot.responseSerialize as (value: unknown) => Buffer;
        return encodeMemorySnapshot(this.context, serialize, this.context.config.maxMessageBytes) as unknown as Promise<{ snapshot: MemorySnapshot }>;
      }),
      GetConfig: unary(log, (call) => {
        viewerOf(this.context, bearerToken(call.metadata));
        return { values: configValues(this.context), version: packageVersion(), backend: memory.backendName };
      }),
      WatchMemory: (call: ServerWritableStream<WatchMemoryRequest__Output, WatchMemoryResponse>) => {
        const token = bearerToken(call.metadata);
        try {
          requireWellFormed(call.request);
          viewerOf(this.context, token);
        } catch (error) {
          call.emit('error', toServiceError(error, log));
          return;
        }
        const intervalMs = call.request.interval_ms === 0 ? 1000 : call.request.interval_ms;
        if (intervalMs < MIN_WATCH_INTERVAL_MS) {
          call.emit('error', toServiceError(invalidArgument('interval_ms', `0 or at least ${MIN_WATCH_INTERVAL_MS}`, intervalMs)));
          return;
        }
        // The token is checked anew for every message, as a call made now would be: a lease token
        // whose lease ended, or a tenant token a reload dropped, ends the stream with the error
        // GetMemoryInfo gets (UNAUTHENTICATED; LEASE_EXPIRED with the lease's close_reason).
        // A tick is skipped while the previous message has not been taken (the client stopped reading:
        // a suspended `tensormemctl top`, a hung dashboard): otherwise every later MemoryInfo waited in
        // the daemon's heap until the client read or went away, without bound (/events does the same).
        // The message is made and encoded once for every stream of the same viewer whose tick comes
        // within WATCH_SHARE_MS (WatchMessages).
        const send = () => {
          if (call.cancelled) return;
          let message: PreEncoded;
          try {
            const viewer = viewerOf(this.context, token);
            if (call.writableLength > 0) return;
            message = watchMessages.messageFor(viewer);
          } catch (error) {
            stop();
            call.emit('error', toServiceError(error, log));
            return;
          }
          call.write(message as unknown as WatchMemoryResponse);
        };
        // interval_ms is a uint32: past 2^31 - 1 ms setInterval would fire every millisecond.
        let stop = () => {};
        send();
        if (call.cancelled) return;
        stop = setLongInterval(send, intervalMs);
        endWhenDraining(this.context, call, () => {
          stop();
          call.emit('error', toServiceError(shuttingDownError()));
        });
        call.on('cancelled', stop);
        call.on('close', stop);
        call.on('error', stop);
      },
    };
    server.addService(tolerantDeserializers(proto.tensormem.v1.MemoryService.service), handlers);
  }
}
