/**
 * The daemon's memory: one pool per device and one host pool, each composed as
 * StatisticsAdaptor(LimitingAdaptor(PoolResource(chunks from the backend))), plus the physical guard
 * and the per-tenant ledger. Also moves bytes between Node buffers and blocks, off the event loop
 * at or above the async threshold.
 */
import { OutOfMemoryError, invalidArgument } from '../errors';
import type { DeviceMemoryInfo, NativeBackend } from '../native/backend';
import { isNativeError } from '../native/backend';
import type { Block, BlockOwner, ChunkSource, MemoryResource, ResourceStats, SegmentSnapshot } from './memory-resource';
import { PoolResource } from './pool-resource';
import { LimitingAdaptor } from './limiting-adaptor';
import { StatisticsAdaptor } from './statistics-adaptor';
import type { PhysicalMemoryGuard } from './physical-memory-guard';
import type { ResolvedLimits } from './limits';

export type HostCategory = 'mirror' | 'host_only' | 'mmap';

export interface MemoryManagerOptions {
  poolChunkBytes: number;
  asyncCopyThresholdBytes: number;
}

interface PoolStack {
  pool: PoolResource;
  top: StatisticsAdaptor;
  limiter: LimitingAdaptor;
}

export interface TenantUsageBytes {
  deviceBytes: number[];
  hostBytes: number;
}

export interface DevicePoolReport extends ResourceStats {
  device: number;
  name: string;
  totalBytes: number;
  freeBytes: number;
  maxBytes: number;
}

export interface HostPoolReport extends ResourceStats {
  maxBytes: number;
  mirrorBytes: number;
  hostOnlyBytes: number;
  mmapBytes: number;
}

class BackendChunkSource implements ChunkSource {
  constructor(
    private readonly backend: NativeBackend,
    private readonly kind: 'device' | 'host',
    private readonly device: number,
    private readonly physical: PhysicalMemoryGuard | undefined,
  ) {}

  allocateChunk(bytes: number): number {
    // Chunks in host RAM (host pool, or the host backend's emulated device) count against the resident-set cap.
    this.physical?.check(bytes);
    try {
      return this.kind === 'device' ? this.backend.allocDevice(this.device, bytes) : this.backend.allocHost(bytes);
    } catch (error) {
      if (isNativeError(error) && error.code === 'OUT_OF_MEMORY') {
        const info = this.kind === 'device' ? this.backend.deviceInfo(this.device) : undefined;
        throw new OutOfMemoryError({
          memory: this.kind === 'device' ? 'DEVICE' : 'HOST',
          device: this.kind === 'device' ? this.device : undefined,
          requestedBytes: bytes,
          capName: this.backend.name === 'cuda' ? 'device memory' : 'emulated device capacity',
          capBytes: info?.totalBytes ?? 0,
          usedBytes: info ? info.totalBytes - info.freeBytes : 0,
          largestFreeBlockBytes: info?.freeBytes ?? 0,
          backendDetail: error.message,
        });
      }
      throw error;
    }
  }

  freeChunk(handle: number): void {
    this.backend.free(handle);
  }
}

export class MemoryManager {
  private readonly devicePools: PoolStack[];
  private readonly hostPool: PoolStack;
  private readonly deviceNames: string[];
  private readonly hostCategoryBytes: Record<HostCategory, number> = { mirror: 0, host_only: 0, mmap: 0 };
  private readonly tenants = new Map<string, TenantUsageBytes>();

  constructor(
    readonly backend: NativeBackend,
    readonly limits: ResolvedLimits,
    private readonly options: MemoryManagerOptions,
    readonly physical: PhysicalMemoryGuard,
  ) {
    const devices = Array.from({ length: backend.deviceCount() }, (_, index) => backend.deviceInfo(index));
    this.deviceNames = devices.map((device) => device.name);
    this.devicePools = devices.map((device, index) => this.stack('DEVICE', index, limits.maxBytes[index], 'pool cap (maxbytes)', backend.name === 'host'));
    this.hostPool = this.stack('HOST', undefined, limits.hostMaxBytes, 'host cap (host-maxbytes)', true);
  }

  private stack(memory: 'DEVICE' | 'HOST', device: number | undefined, capBytes: number, capName: string, costsHostRam: boolean): PoolStack {
    const source = new BackendChunkSource(this.backend, memory === 'DEVICE' ? 'device' : 'host', device ?? 0, costsHostRam ? this.physical : undefined);
    const pool = new PoolResource({ source, memory, device, maxReservedBytes: capBytes, chunkBytes: this.options.poolChunkBytes, capName });
    const limiter = new LimitingAdaptor(pool, { limitBytes: capBytes, capName, memory, device });
    return { pool, limiter, top: new StatisticsAdaptor(limiter) };
  }

  get deviceCount(): number {
    return this.devicePools.length;
  }

  get backendName(): string {
    return this.backend.name;
  }

  private devicePool(device: number): PoolStack {
    const stack = this.devicePools[device];
    if (!Number.isInteger(device) || stack === undefined) {
      throw invalidArgument('device', `a device index from 0 to ${this.devicePools.length - 1}`, device);
    }
    return stack;
  }

  /** Validates a device index (INVALID_ARGUMENT naming `device`). */
  checkDevice(device: number): void {
    this.devicePool(device);
  }

  allocateDevice(device: number, bytes: number, owner: BlockOwner): Block {
    const block = this.devicePool(device).top.allocate(bytes, owner);
    this.ledger(owner.tenant).deviceBytes[device] += block.bytes;
    return block;
  }

  deallocateDevice(device: number, block: Block): void {
    this.devicePool(device).top.deallocate(block);
    this.ledger(block.owner.tenant).deviceBytes[device] -= block.bytes;
  }

  allocateHost(bytes: number, owner: BlockOwner, category: HostCategory): Block {
    const block = this.hostPool.top.allocate(bytes, owner);
    this.hostCategoryBytes[category] += block.bytes;
    this.ledger(owner.tenant).hostBytes += block.bytes;
    return block;
  }

  deallocateHost(block: Block, category: HostCategory): void {
    this.hostPool.top.deallocate(block);
    this.hostCategoryBytes[category] -= block.bytes;
    this.ledger(block.owner.tenant).hostBytes -= block.bytes;
  }

  private ledger(tenant = ''): TenantUsageBytes {
    let usage = this.tenants.get(tenant);
    if (!usage) {
      usage = { deviceBytes: this.devicePools.map(() => 0), hostBytes: 0 };
      this.tenants.set(tenant, usage);
    }
    return usage;
  }

  tenantUsage(tenant: string): TenantUsageBytes {
    return this.ledger(tenant);
  }

  tenantNames(): string[] {
    return [...this.tenants.keys()].filter((name) => name !== '');
  }

  async writeBlock(block: Block, offset: number, data: Uint8Array): Promise<void> {
    if (data.byteLength >= this.options.asyncCopyThresholdBytes) await this.backend.writeAsync(block.chunkHandle, block.offset + offset, data);
    else this.backend.write(block.chunkHandle, block.offset + offset, data);
  }

  async readBlock(block: Block, offset: number, target: Uint8Array): Promise<void> {
    if (target.byteLength >= this.options.asyncCopyThresholdBytes) await this.backend.readAsync(block.chunkHandle, block.offset + offset, target);
    else this.backend.read(block.chunkHandle, block.offset + offset, target);
  }

  async copyBlock(destination: Block, destinationOffset: number, source: Block, sourceOffset: number, bytes: number): Promise<void> {
    if (bytes === 0) return;
    const args = [destination.chunkHandle, destination.offset + destinationOffset, source.chunkHandle, source.offset + sourceOffset, bytes] as const;
    if (bytes >= this.options.asyncCopyThresholdBytes) await this.backend.copyAsync(...args);
    else this.backend.copy(...args);
  }

  async fill(block: Block, offset: number, bytes: number, value: number): Promise<void> {
    if (bytes === 0) return;
    if (bytes >= this.options.asyncCopyThresholdBytes) await this.backend.fillAsync(block.chunkHandle, block.offset + offset, bytes, value);
    else this.backend.fill(block.chunkHandle, block.offset + offset, bytes, value);
  }

  deviceReports(): DevicePoolReport[] {
    return this.devicePools.map((stack, index) => {
      const info: DeviceMemoryInfo = this.backend.deviceInfo(index);
      return { ...stack.top.stats(), device: index, name: this.deviceNames[index], totalBytes: info.totalBytes, freeBytes: info.freeBytes, maxBytes: this.limits.maxBytes[index] };
    });
  }

  hostReport(): HostPoolReport {
    return {
      ...this.hostPool.top.stats(),
      maxBytes: this.limits.hostMaxBytes,
      mirrorBytes: this.hostCategoryBytes.mirror,
      hostOnlyBytes: this.hostCategoryBytes.host_only,
      mmapBytes: this.hostCategoryBytes.mmap,
    };
  }

  snapshot(): Array<{ pool: string; segments: SegmentSnapshot[] }> {
    return [
      ...this.devicePools.map((stack, index) => ({ pool: `device:${index}`, segments: stack.pool.snapshot() })),
      { pool: 'host', segments: this.hostPool.pool.snapshot() },
    ];
  }

  /** Gives fully free chunks back to the backend (under memory pressure). */
  trim(): void {
    for (const stack of [...this.devicePools, this.hostPool]) stack.pool.trim();
  }

  /** Frees every chunk (shutdown). Blocks still live are lost with them. */
  release(): void {
    for (const stack of [...this.devicePools, this.hostPool]) stack.pool.release();
  }

  /** For tests and the fuzz invariant: every pool's blocks add up to its used bytes. */
  checkInvariants(): void {
    for (const stack of [...this.devicePools, this.hostPool]) stack.pool.checkInvariants();
  }
}

export type { MemoryResource };
