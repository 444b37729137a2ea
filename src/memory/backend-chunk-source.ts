/**
 * Where a pool's chunks come from: the addon's device or host allocations, checked against
 * --maxphysicalbytes (chunks in host RAM) and --max-mapped-regions (dedicated chunks), with the
 * backend's out-of-memory turned into an OutOfMemoryError that says the numbers.
 */
import { OutOfMemoryError } from '../errors';
import type { NativeBackend } from '../native/backend';
import { isNativeError } from '../native/backend';
import type { AllocateOptions, ChunkSource } from './memory-resource';
import { type MappedRegions, dedicatedRegionOf } from './mapped-regions';
import type { PhysicalMemoryGuard } from './physical-memory-guard';
import { newShmName } from './shm-names';

export class BackendChunkSource implements ChunkSource {
  constructor(
    private readonly backend: NativeBackend,
    private readonly kind: 'device' | 'host',
    private readonly device: number,
    private readonly physical: PhysicalMemoryGuard | undefined,
    private readonly regions: MappedRegions,
  ) {}

  /** Dedicated host chunks are named shared-memory objects (ExportArray maps them); dedicated device chunks are plain allocations of their own. */
  allocateChunk(bytes: number, options?: AllocateOptions): number {
    // Chunks in host RAM (host pool, or the host backend's emulated device) count against the resident-set cap.
    this.physical?.check(bytes);
    // A dedicated chunk's --max-mapped-regions check came first (checkDedicated, which the pool asks).
    try {
      let handle: number;
      if (this.kind === 'device') handle = this.backend.allocDevice(this.device, bytes);
      else handle = options?.dedicated ? this.backend.allocHost(bytes, { shmName: newShmName() }) : this.backend.allocHost(bytes);
      if (options?.dedicated) this.regions.addDedicated(handle);
      return handle;
    } catch (error) {
      if (isNativeError(error) && error.code === 'OUT_OF_MEMORY') {
        // The pool states its own cap and numbers (PoolResource.sourceRefusal); these are the device's as the backend reports them.
        const info = this.kind === 'device' ? this.backend.deviceInfo(this.device) : undefined;
        throw new OutOfMemoryError({
          memory: this.kind === 'device' ? 'DEVICE' : 'HOST',
          device: this.kind === 'device' ? this.device : undefined,
          requestedBytes: bytes,
          capName: this.kind === 'host' ? 'host memory' : this.backend.name === 'cuda' ? 'device memory' : 'emulated device capacity',
          capBytes: info?.totalBytes ?? 0,
          usedBytes: info ? info.totalBytes - info.freeBytes : 0,
          largestFreeBlockBytes: info?.freeBytes ?? 0,
          backendDetail: error.message,
          backendRefused: true,
        });
      }
      throw error;
    }
  }

  freeChunk(handle: number): void {
    this.backend.free(handle);
    this.regions.freed(handle);
  }

  /** MAPPING_LIMIT at --max-mapped-regions; empty pool chunks given back would not make room (they are no region). */
  checkDedicated(bytes: number): void {
    this.regions.check(dedicatedRegionOf(bytes));
  }
}
