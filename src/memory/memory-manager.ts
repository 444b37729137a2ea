/**
 * The daemon's memory: one pool per device and one host pool, each composed as
 * StatisticsAdaptor(LimitingAdaptor(PoolResource(chunks from the backend))); every tenant reaches
 * them through its own QuotaAdaptor per pool (its usage and hard quota; tenant-accounts.ts keeps the
 * accounts), and device requests also pass the guarantee policy. Plus the physical guard. Also moves bytes between Node buffers and blocks, off the event loop
 * at or above the async threshold.
 */
import { MmapLimitError, QuotaExceededError, TensormemError, invalidArgument, mirrorRefusal } from '../errors';
import { statSync, unlinkSync } from 'node:fs';
import type { DeviceMemoryInfo, NativeBackend } from '../native/backend';
import { isNativeError } from '../native/backend';
import { CUDA_IPC_GRANULE_BYTES, type AllocateOptions, type Block, type BlockOwner, type ResourceStats, type SegmentSnapshot } from './memory-resource';
import type { PoolCapture } from './pool-capture';
import { PoolResource } from './pool-resource';
import { BackendChunkSource } from './backend-chunk-source';
import { MappedRegions, dedicatedRegionOf } from './mapped-regions';
import { LimitingAdaptor } from './limiting-adaptor';
import { StatisticsAdaptor } from './statistics-adaptor';
import type { PhysicalMemoryGuard } from './physical-memory-guard';
import type { HeapGuard } from './heap-guard';
import { QuotaAdaptor } from './quota-adaptor';
import { MemoryWaitQueue, TenantWaits } from './memory-wait-queue';
import { MmapFiles, defaultMmapDir } from './mmap-files';
import { checkGuarantees } from './guarantee-policy';
import { TenantAccounts, type TenantAccount, type TenantLimits } from './tenant-accounts';
import type { ResolvedLimits } from './limits';
import { formatBytes } from '../units';
import { alignedSizeOf } from './sized-resource';

export type HostCategory = 'mirror' | 'host_only' | 'mmap';

export interface MemoryManagerOptions {
  poolChunkBytes: number;
  asyncCopyThresholdBytes: number;
  /** Root of MMAP workspace files (--mmap-dir); default defaultMmapDir(). */
  mmapDir?: string;
  /** --mmap-maxbytes: the most bytes of MMAP workspace files mapped at once, all tenants together; 0 or absent = no cap. */
  mmapMaxBytes?: number;
  /** The daemon's own heap: checkHeap() asks it before a new array, lease or workspace; absent = no check. */
  heapGuard?: HeapGuard;
  /**
   * --scrub: new arrays and workspace buffers are zeroed before a lease sees them, so that no lease reads
   * bytes another one freed (pool memory is reused). Default false here; the daemon's default is on.
   */
  scrub?: boolean;
  /**
   * --max-mapped-regions: the most chunks of their own (exportable arrays' regions) and MMAP workspace
   * mappings held at once, all tenants together; 0 or absent = no cap. See MappedRegions.
   */
  maxMappedRegions?: number;
  /** --max-tenant-waits: the most wait_for_memory calls one tenant may have waiting at once, all devices together; 0 or absent = no cap. */
  maxTenantWaits?: number;
}

interface PoolStack {
  pool: PoolResource;
  top: StatisticsAdaptor;
  limiter: LimitingAdaptor;
}

export interface DevicePoolReport extends ResourceStats {
  device: number;
  name: string;
  totalBytes: number;
  freeBytes: number;
  maxBytes: number;
  /** wait_for_memory requests queued for this device now. */
  waitingAllocations: number;
}

export interface HostPoolReport extends ResourceStats {
  maxBytes: number;
  mirrorBytes: number;
  hostOnlyBytes: number;
  mmapBytes: number;
  /** --mmap-maxbytes; 0 = no cap. */
  mmapMaxBytes: number;
}

/**
 * Where a copy of `bytes` reads (`from`) and writes (`to`) in their chunks, and how the two ranges meet:
 * the addon copies only disjoint ranges, so the same range is nothing to do and a partial overlap is
 * staged (copyBlock, copyBlockInline).
 */
function copyRanges(destination: Block, destinationOffset: number, source: Block, sourceOffset: number, bytes: number): { to: number; from: number; overlap: 'none' | 'same' | 'partial' } {
  const to = destination.offset + destinationOffset;
  const from = source.offset + sourceOffset;
  if (destination.chunkHandle !== source.chunkHandle || to >= from + bytes || from >= to + bytes) return { to, from, overlap: 'none' };
  return { to, from, overlap: to === from ? 'same' : 'partial' };
}

/** The length of the file at `path` in bytes; 0 when there is none (mapping it then fails, naming the file). */
function fileLength(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

export class MemoryManager {
  private readonly devicePools: PoolStack[];
  private readonly hostPool: PoolStack;
  private readonly deviceNames: string[];
  private readonly hostCategoryBytes: Record<HostCategory, number> = { mirror: 0, host_only: 0, mmap: 0 };
  /**
   * The MMAP files mapped, by identity (tenant, device and inode; a temporary file by its chunk): a file
   * several workspaces map (a tenant's temp_file_path, shared by its leases) takes its disk once, so it
   * is charged to mmap_bytes, --mmap-maxbytes and quota.mmap once, at its first mapping, and given back
   * at its last unmap.
   */
  private readonly mappedFiles = new Map<string, { bytes: number; mappings: number }>();
  /** The mappedFiles key of each live mapping, by its chunk handle. */
  private readonly fileOfChunk = new Map<number, string>();
  /** Every tenant's quotas, guarantee, counts and heap share over these pools. */
  readonly tenants: TenantAccounts;
  private readonly waitQueues: MemoryWaitQueue[];
  /** Each tenant's wait_for_memory calls in every device's queue (--max-tenant-waits). */
  readonly tenantWaits: TenantWaits;

  /** Where MMAP workspace files live (--mmap-dir), by tenant. */
  readonly mmapFiles: MmapFiles;
  /** Dedicated chunks and MMAP mappings held, against --max-mapped-regions. */
  private readonly mappedRegions: MappedRegions;
  /** Dedicated blocks (each a chunk, a mapped region, of its own) by chunk handle, with the tenant account that holds it. */
  private readonly dedicatedChunks = new Map<number, TenantAccount>();

  constructor(
    readonly backend: NativeBackend,
    readonly limits: ResolvedLimits,
    private readonly options: MemoryManagerOptions,
    readonly physical: PhysicalMemoryGuard,
  ) {
    this.mmapFiles = new MmapFiles(options.mmapDir ?? defaultMmapDir());
    this.mappedRegions = new MappedRegions(options.maxMappedRegions ?? 0);
    const devices = Array.from({ length: backend.deviceCount() }, (_, index) => backend.deviceInfo(index));
    this.deviceNames = devices.map((device) => device.name);
    this.devicePools = devices.map((device, index) => this.stack('DEVICE', index, limits.maxBytes[index], 'pool cap (maxbytes)', backend.name === 'host'));
    this.hostPool = this.stack('HOST', undefined, limits.hostMaxBytes, 'host cap (host-maxbytes)', true);
    this.tenants = new TenantAccounts(
      (tenant, tenantLimits) => ({
        device: this.devicePools.map((stack, index) => new QuotaAdaptor(stack.top, tenant, tenantLimits.deviceQuotaBytes, 'DEVICE', index)),
        host: new QuotaAdaptor(this.hostPool.top, tenant, tenantLimits.hostQuotaBytes, 'HOST'),
      }),
      this.devicePools.length,
      options.heapGuard,
    );
    if (options.heapGuard) options.heapGuard.fairShareOf = (tenant) => this.tenants.heapShareOf(tenant);
    this.tenantWaits = new TenantWaits(options.maxTenantWaits ?? 0);
    this.waitQueues = this.devicePools.map(
      (stack, index) =>
        new MemoryWaitQueue(() => {
          const stats = stack.top.stats();
          return { device: index, capName: 'pool cap (maxbytes)', capBytes: limits.maxBytes[index], usedBytes: stats.usedBytes, largestFreeBlockBytes: stats.largestFreeBlockBytes };
        }, this.tenantWaits),
    );
    // --maxphysicalbytes counts the chunks in host RAM when they are taken, not when first written: the
    // host pool's (pinned on cuda) and, on the host backend, the emulated devices' (dedicated chunks and
    // workspace buffers are pool chunks too). MMAP workspaces' files are not pool chunks: their pages count in RSS only.
    const hostRamPools = [this.hostPool, ...(backend.name === 'host' ? this.devicePools : [])].map((stack) => stack.pool);
    physical.countChunks(() => {
      let bytes = 0;
      for (const pool of hostRamPools) bytes += pool.reservedBytes;
      return bytes;
    });
  }

  private stack(memory: 'DEVICE' | 'HOST', device: number | undefined, capBytes: number, capName: string, costsHostRam: boolean): PoolStack {
    const source = new BackendChunkSource(this.backend, memory === 'DEVICE' ? 'device' : 'host', device ?? 0, costsHostRam ? this.physical : undefined, this.mappedRegions);
    // An exported device chunk is handed out as a CUDA IPC handle, which shares the whole block cudaMalloc carved it from.
    const dedicatedGranuleBytes = memory === 'DEVICE' && this.backend.name === 'cuda' ? CUDA_IPC_GRANULE_BYTES : undefined;
    const pool = new PoolResource({ source, memory, device, maxReservedBytes: capBytes, chunkBytes: this.options.poolChunkBytes, capName, dedicatedGranuleBytes });
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

  /** A request for `device` that a check standing for its pool's cap refused before the pool saw it (a cuDNN scratch's budget): counted in the pool's failed allocations. */
  countDeviceRefusal(device: number): void {
    this.devicePool(device).top.countRefusal();
  }

  /** Validates a device index (INVALID_ARGUMENT naming `device`). */
  checkDevice(device: number): void {
    this.devicePool(device);
  }

  /**
   * QUOTA_EXCEEDED, with the numbers, when `bytes` more on `device` would take `tenant` past its device
   * quota now; nothing is allocated (a wait_for_memory request is checked before it queues: quota
   * refusals never wait, also behind the tenant's earlier requests).
   */
  checkDeviceQuota(device: number, tenant: string, bytes: number, options?: AllocateOptions): void {
    this.devicePool(device);
    this.tenants.account(tenant).device[device].check(bytes, options);
  }

  /** What a request of `bytes` takes of the device pool's cap: its bytes rounded as the pool rounds them. */
  deviceFootprint(device: number, bytes: number, options?: AllocateOptions): number {
    return alignedSizeOf(this.devicePool(device).top, bytes, options);
  }

  allocateDevice(device: number, bytes: number, owner: BlockOwner, options?: AllocateOptions): Block {
    const stack = this.devicePool(device);
    const account = this.tenants.account(owner.tenant);
    const quota = account.device[device];
    if (this.tenants.guaranteesInForce) {
      // The tenant's own quota is reported before others' guarantees; without guarantees, allocate() checks it.
      quota.check(bytes, options);
      const stats = stack.top.stats();
      try {
        checkGuarantees(device, account.tenant, quota.alignedSize(bytes, options), bytes, { usedBytes: stats.usedBytes, capBytes: this.limits.maxBytes[device], largestFreeBlockBytes: stats.largestFreeBlockBytes }, this.tenants.othersUnusedGuaranteeBytes(device, account.tenant), quota);
      } catch (error) {
        // The pool cap less others' guarantees refused it: the pool's failed allocations count it, as they count the cap's own refusals.
        stack.top.countRefusal(options);
        throw error;
      }
    }
    if (options?.dedicated) this.tenants.checkMappedRegion(account, dedicatedRegionOf(bytes));
    const block = this.allocatingIn(account, () => quota.allocate(bytes, owner, options));
    this.countDedicated(block, account, options);
    this.scrubDedicatedTail(block, bytes, options);
    return block;
  }

  /** Mappings the tenants' memory holds now (--max-mapped-regions): exportable arrays' regions and MMAP workspaces. */
  get mappedRegionsHeld(): number {
    return this.mappedRegions.held;
  }

  /** A dedicated block is a mapped region of its tenant's (max_mapped_regions) until it is freed. */
  private countDedicated(block: Block, account: TenantAccount, options: AllocateOptions | undefined): void {
    if (!options?.dedicated) return;
    this.dedicatedChunks.set(block.chunkHandle, account);
    account.regions.count++;
  }

  private uncountDedicated(block: Block): void {
    const account = this.dedicatedChunks.get(block.chunkHandle);
    if (account === undefined) return;
    this.dedicatedChunks.delete(block.chunkHandle);
    account.regions.count--;
  }

  /**
   * A dedicated block is a chunk of its own, whole pages, that ExportArray hands out whole (a CUDA IPC
   * handle, a shared-memory region): past the `bytes` asked for, which the lease zeroes or writes, lie up
   * to a page of whatever that memory held last (cudaMalloc does not clear memory this process freed,
   * another tenant's included). --scrub zeroes that tail.
   */
  private scrubDedicatedTail(block: Block, bytes: number, options: AllocateOptions | undefined): void {
    if (options?.dedicated && this.scrubs && block.bytes > bytes) this.fillInline(block, bytes, block.bytes - bytes, 0);
  }

  /** Runs `allocate` with the account marked busy, so that TenantAccounts.releaseIdle keeps it (see TenantAccount.allocating). */
  private allocatingIn(account: TenantAccount, allocate: () => Block): Block {
    account.allocating++;
    try {
      return allocate();
    } finally {
      account.allocating--;
    }
  }

  deallocateDevice(device: number, block: Block): void {
    this.tenants.account(block.owner.tenant).device[device].deallocate(block);
    this.uncountDedicated(block);
    this.waitQueues[device].notifyFreed();
  }

  /**
   * A memory-mapped file as a HOST block of its whole length (MMAP workspaces). Its pages live in the
   * file, so it counts in mmap_bytes, not against --host-maxbytes; it counts against --mmap-maxbytes
   * and the tenant's quota.mmap, checked before the file is created (a file created with
   * `createBytes` has that length; an existing one mapped as it is, its length now), once per file: a
   * file mapped again while mapped (a tenant's path shared by its leases) is not charged again. A
   * `deleteOnFree` file is unlinked as soon as it is mapped.
   */
  mapFile(path: string, options: { createBytes: number; deleteOnFree: boolean }, owner: BlockOwner): Block {
    const account = this.tenants.account(owner.tenant);
    // A file mapped already (createBytes 0: as it is) is charged already; only growth since counts.
    const charged = options.deleteOnFree ? undefined : this.mappedFiles.get(this.fileKey(owner.tenant ?? '', path) ?? '');
    // Re-creating a file a live workspace maps is refused whatever the caps (the addon would refuse it too):
    // said first, or a file near the tenant's quota.mmap was refused QUOTA_EXCEEDED for its whole new length.
    if (charged && options.createBytes > 0) {
      throw new TensormemError(
        'FAILED_PRECONDITION',
        'FAILED_PRECONDITION',
        `cannot map ${path} for an MMAP workspace: cannot create it with ${formatBytes(options.createBytes)}: the file is mapped by a live chunk of this process ` +
          `(another MMAP workspace; re-creating it would truncate it under that mapping): an initial_size no larger than the file (${formatBytes(charged.bytes)}) maps it as it is, shared, or destroy that workspace first`,
        { path },
      );
    }
    this.checkMmapLimits(account, options.createBytes > 0 ? options.createBytes : Math.max(0, fileLength(path) - (charged?.bytes ?? 0)));
    // Each workspace maps its file anew, also a file mapped already and charged once: counted by mapping.
    this.tenants.checkMappedRegion(account, `${path} for an MMAP workspace`);
    this.mappedRegions.check(`${path} for an MMAP workspace`);
    if (options.createBytes > 0) this.mmapFiles.checkRoom(path, options.createBytes);
    let mapped: { handle: number; bytes: number };
    try {
      mapped = this.backend.mapFile(path, options);
    } catch (error) {
      // The file system of --mmap-dir is full (ENOSPC, EDQUOT): a resource, as gRPC's RESOURCE_EXHAUSTED
      // names it ("the entire file system is out of space"), which freeing MMAP workspaces cures.
      if (isNativeError(error) && error.code === 'OUT_OF_MEMORY') {
        throw new TensormemError(
          'RESOURCE_EXHAUSTED',
          'MMAP_LIMIT',
          `Can't map [MMAP] file ${path}: ${error.message}. Try: destroy MMAP workspaces, a smaller initial_size, or room on the file system of --mmap-dir (and --mmap-maxbytes below its size).`,
          { path, requested_bytes: String(options.createBytes) },
        );
      }
      if (isNativeError(error)) throw new TensormemError('FAILED_PRECONDITION', 'FAILED_PRECONDITION', `cannot map ${path} for an MMAP workspace: ${error.message}`, { path });
      throw error;
    }
    const key = (options.deleteOnFree ? undefined : this.fileKey(owner.tenant ?? '', path)) ?? `chunk ${mapped.handle}`;
    const file = this.mappedFiles.get(key);
    const chargeBytes = mapped.bytes - (file?.bytes ?? 0);
    if (options.createBytes === 0 && chargeBytes > 0) {
      // The file may have grown since its length was read; mapping it as it is changed nothing, so it is undone.
      try {
        this.checkMmapLimits(account, chargeBytes);
      } catch (error) {
        this.backend.free(mapped.handle);
        throw error;
      }
    }
    if (chargeBytes > 0) {
      this.hostCategoryBytes.mmap += chargeBytes;
      account.mmap.usedBytes += chargeBytes;
    }
    if (file) {
      file.mappings++;
      file.bytes = Math.max(file.bytes, mapped.bytes);
    } else {
      this.mappedFiles.set(key, { bytes: mapped.bytes, mappings: 1 });
    }
    this.fileOfChunk.set(mapped.handle, key);
    account.mmap.files++;
    account.regions.count++;
    this.mappedRegions.addFileMapping(1);
    if (options.deleteOnFree) {
      // A private file (a temporary workspace's): its name goes now, the mapping keeps its pages, and
      // the disk space returns at the unmap or whenever the process ends, SIGKILL and crashes included,
      // instead of staying in --mmap-dir for good. (Should the unlink fail, the free still unlinks it.)
      try {
        unlinkSync(path);
      } catch {
        // left to the free
      }
    }
    return { chunkHandle: mapped.handle, offset: 0, bytes: mapped.bytes, requestedBytes: mapped.bytes, owner };
  }

  private checkMmapLimits(account: TenantAccount, bytes: number): void {
    const { mmap } = account;
    if (mmap.quotaBytes > 0 && mmap.usedBytes + bytes > mmap.quotaBytes) {
      throw new QuotaExceededError(account.tenant, 'MMAP', undefined, bytes, mmap.quotaBytes, mmap.usedBytes);
    }
    const maxBytes = this.options.mmapMaxBytes ?? 0;
    if (maxBytes > 0 && this.hostCategoryBytes.mmap + bytes > maxBytes) throw new MmapLimitError(bytes, this.hostCategoryBytes.mmap, maxBytes);
  }

  unmapFile(block: Block): void {
    this.backend.free(block.chunkHandle);
    this.mappedRegions.addFileMapping(-1);
    const account = this.tenants.account(block.owner.tenant);
    account.mmap.files--;
    account.regions.count--;
    const key = this.fileOfChunk.get(block.chunkHandle);
    this.fileOfChunk.delete(block.chunkHandle);
    const file = key === undefined ? undefined : this.mappedFiles.get(key);
    if (file && --file.mappings > 0) return;
    if (key !== undefined) this.mappedFiles.delete(key);
    const bytes = file?.bytes ?? block.bytes;
    this.hostCategoryBytes.mmap -= bytes;
    account.mmap.usedBytes -= bytes;
  }

  /**
   * Which file a mapFile block maps (the same for every block mapping that file: the tenant's, by
   * device and inode; a temporary file by its chunk), so that a holder of several counts each file once.
   */
  mappedFileOf(block: Block): string {
    return this.fileOfChunk.get(block.chunkHandle) ?? `chunk ${block.chunkHandle}`;
  }

  /** Which file `path` names, for mappedFiles: the tenant's, by device and inode; undefined when there is none. */
  private fileKey(tenant: string, path: string): string | undefined {
    try {
      const status = statSync(path);
      return `${tenant}\0${status.dev}:${status.ino}`;
    } catch {
      return undefined;
    }
  }

  /**
   * Refuses (HEAP_LIMIT) while the daemon's heap is nearly full: called before a new array, lease or
   * workspace of `tenant` is made, with what it will keep of the heap (HEAP_COST). A tenant holding more
   * than its fair share of the daemon's objects is refused earlier (HeapGuard, FAIR_SHARE_LINE).
   */
  checkHeap(costBytes: number, tenant?: string): void {
    this.options.heapGuard?.check(costBytes, tenant);
  }

  /**
   * Where tenants' quotas and guarantees come from (the tenants file); called again when the file is
   * reloaded (TenantAccounts.setLimits). Requests waiting for device memory are tried again: a guarantee
   * lowered or dropped leaves others room.
   */
  setTenantLimits(limits: (tenant: string) => TenantLimits): void {
    this.tenants.setLimits(limits);
    for (const queue of this.waitQueues) queue.notifyFreed();
  }

  /** Σ max(0, guarantee − used) on `device` over every tenant but `tenant` (INVALID_ARGUMENT for a device that does not exist). */
  othersUnusedGuaranteeBytes(device: number, tenant: string): number {
    this.devicePool(device);
    return this.tenants.othersUnusedGuaranteeBytes(device, tenant);
  }

  /** --heap-reserve in force, in bytes (its default resolved against the heap limit); undefined without a heap guard. */
  get heapReserveBytes(): number | undefined {
    return this.options.heapGuard?.reserveBytes;
  }

  /** Every allocation waiting for device memory fails with `error` (the daemon drains). */
  failWaiting(error: unknown): void {
    for (const queue of this.waitQueues) queue.failAll(error);
  }

  /** The backpressure queue of a device (AllocateArray with wait_for_memory). */
  waitQueue(device: number): MemoryWaitQueue {
    this.devicePool(device);
    return this.waitQueues[device];
  }

  allocateHost(bytes: number, owner: BlockOwner, category: HostCategory, options?: AllocateOptions): Block {
    const account = this.tenants.account(owner.tenant);
    let block: Block;
    try {
      if (options?.dedicated) this.tenants.checkMappedRegion(account, dedicatedRegionOf(bytes));
      block = this.allocatingIn(account, () => account.host.allocate(bytes, owner, options));
    } catch (error) {
      throw category === 'mirror' && owner.arrayId !== undefined ? mirrorRefusal(error, owner.arrayId) : error;
    }
    this.countDedicated(block, account, options);
    this.hostCategoryBytes[category] += block.bytes;
    this.scrubDedicatedTail(block, bytes, options);
    return block;
  }

  deallocateHost(block: Block, category: HostCategory): void {
    this.tenants.account(block.owner.tenant).host.deallocate(block);
    this.uncountDedicated(block);
    this.hostCategoryBytes[category] -= block.bytes;
  }

  async writeBlock(block: Block, offset: number, data: Uint8Array): Promise<void> {
    if (this.copiesInline(data.byteLength)) this.writeBlockInline(block, offset, data);
    else await this.backend.writeAsync(block.chunkHandle, block.offset + offset, data);
  }

  /** Whether a copy of `bytes` runs on the event loop (below --async-copy-threshold), so that writeBlockInline may be used. */
  copiesInline(bytes: number): boolean {
    return bytes < this.options.asyncCopyThresholdBytes;
  }

  /** writeBlock done now, on the caller's stack; only for copies that copiesInline allows. */
  writeBlockInline(block: Block, offset: number, data: Uint8Array): void {
    this.backend.write(block.chunkHandle, block.offset + offset, data);
  }

  async readBlock(block: Block, offset: number, target: Uint8Array): Promise<void> {
    if (target.byteLength >= this.options.asyncCopyThresholdBytes) await this.backend.readAsync(block.chunkHandle, block.offset + offset, target);
    else this.backend.read(block.chunkHandle, block.offset + offset, target);
  }

  /** A view of a host block's bytes, no copy; the block's chunk stays mapped until releaseHostView(view). */
  viewHostBlock(block: Block, offset: number, bytes: number): Uint8Array {
    return this.backend.hostView(block.chunkHandle, block.offset + offset, bytes);
  }

  releaseHostView(view: Uint8Array): void {
    this.backend.releaseView(view);
  }

  /**
   * Copies `bytes` from `source` to `destination`. The two ranges may overlap (memmove): a circular
   * workspace hands out memory that earlier arrays of it still use (ND4J's ring buffer), so a
   * DuplicateArray into it can land on its own source. The same range is already the bytes; a range
   * that overlaps in part is staged through a host buffer (the addon copies only disjoint ranges).
   */
  async copyBlock(destination: Block, destinationOffset: number, source: Block, sourceOffset: number, bytes: number): Promise<void> {
    if (bytes === 0) return;
    const { to, from, overlap } = copyRanges(destination, destinationOffset, source, sourceOffset, bytes);
    if (overlap === 'same') return;
    if (overlap === 'partial') {
      const staging = Buffer.allocUnsafe(bytes);
      await this.readBlock(source, sourceOffset, staging);
      await this.writeBlock(destination, destinationOffset, staging);
      return;
    }
    const args = [destination.chunkHandle, to, source.chunkHandle, from, bytes] as const;
    if (bytes >= this.options.asyncCopyThresholdBytes) await this.backend.copyAsync(...args);
    else this.backend.copy(...args);
  }

  /**
   * copyBlock done now, on the caller's stack, whatever its size (overlapping ranges too, staged): for a
   * copy into memory that may change hands as soon as the event loop turns (an attached array's, whose
   * workspace's next cycle reuses it), so that the check before it still holds when the bytes land.
   */
  copyBlockInline(destination: Block, destinationOffset: number, source: Block, sourceOffset: number, bytes: number): void {
    if (bytes === 0) return;
    const { to, from, overlap } = copyRanges(destination, destinationOffset, source, sourceOffset, bytes);
    if (overlap === 'same') return;
    if (overlap === 'partial') {
      const staging = Buffer.allocUnsafe(bytes);
      this.backend.read(source.chunkHandle, from, staging);
      this.backend.write(destination.chunkHandle, to, staging);
      return;
    }
    this.backend.copy(destination.chunkHandle, to, source.chunkHandle, from, bytes);
  }

  /** Whether new arrays and workspace buffers are zeroed before a lease sees them (--scrub). */
  get scrubs(): boolean {
    return this.options.scrub === true;
  }

  /** Zeroes a whole block now, on the event loop (workspace buffers: the workspace API is synchronous). */
  scrubNow(block: Block): void {
    this.fillInline(block, 0, block.bytes, 0);
  }

  /** fill() done now, on the event loop: for fills below --async-copy-threshold (copiesInline). */
  fillInline(block: Block, offset: number, bytes: number, value: number): void {
    if (bytes > 0) this.backend.fill(block.chunkHandle, block.offset + offset, bytes, value);
  }

  async fill(block: Block, offset: number, bytes: number, value: number): Promise<void> {
    if (bytes === 0) return;
    if (bytes >= this.options.asyncCopyThresholdBytes) await this.backend.fillAsync(block.chunkHandle, block.offset + offset, bytes, value);
    else this.backend.fill(block.chunkHandle, block.offset + offset, bytes, value);
  }

  deviceReports(): DevicePoolReport[] {
    return this.devicePools.map((stack, index) => {
      const info: DeviceMemoryInfo = this.backend.deviceInfo(index);
      return { ...stack.top.stats(), device: index, name: this.deviceNames[index], totalBytes: info.totalBytes, freeBytes: info.freeBytes, maxBytes: this.limits.maxBytes[index], waitingAllocations: this.waitQueues[index].size };
    });
  }

  hostReport(): HostPoolReport {
    return {
      ...this.hostPool.top.stats(),
      maxBytes: this.limits.hostMaxBytes,
      mirrorBytes: this.hostCategoryBytes.mirror,
      hostOnlyBytes: this.hostCategoryBytes.host_only,
      mmapBytes: this.hostCategoryBytes.mmap,
      mmapMaxBytes: this.options.mmapMaxBytes ?? 0,
    };
  }

  /** Every pool's segments and blocks, taken and built now: O(blocks · log blocks) of the event loop. */
  snapshot(): PoolSnapshot[] {
    return this.captureSnapshot().map(({ pool, capture }) => ({ pool, segments: capture.build() }));
  }

  /**
   * Every pool at this instant (copies, O(blocks): no sorting, no object per block), to be listed
   * later a slice at a time (PoolCapture.segmentsInSlices) while the pools go on changing: what
   * GetMemorySnapshot and /api/snapshot do, since building 10^6 blocks at once held the event loop,
   * every other call waiting, for 0.25-0.6 s (1-2 s in a busy daemon).
   */
  captureSnapshot(): Array<{ pool: string; capture: PoolCapture }> {
    return this.namedPools().map(({ name, pool }) => ({ pool: name, capture: pool.capture() }));
  }

  /** Every pool by the name snapshots and logs give it: `device:N`, then `host`. */
  private namedPools(): Array<{ name: string; pool: PoolResource }> {
    return [...this.devicePools.map((stack, index) => ({ name: `device:${index}`, pool: stack.pool })), { name: 'host', pool: this.hostPool.pool }];
  }

  /** Gives fully free chunks back to the backend (under memory pressure). */
  trim(): void {
    for (const stack of [...this.devicePools, this.hostPool]) stack.pool.trim();
  }

  /**
   * Gives back the chunks that held no live block for `idleMs` (--pool-idle-release): the bytes
   * released per pool (`device:N`, `host`), only pools that released any. On the cuda backend the
   * memory goes back on the addon's release thread (cudaFree waits for the copies on the device), so a
   * copy in flight holds back neither this nor the event loop.
   */
  releaseIdleChunks(idleMs: number): Record<string, number> {
    const released: Record<string, number> = {};
    for (const { name, pool } of this.namedPools()) {
      const bytes = pool.releaseIdleChunks(idleMs);
      if (bytes > 0) released[name] = bytes;
    }
    return released;
  }

  /** Frees every chunk (shutdown) and returns once their memory is back. Blocks still live are lost with them. */
  release(): void {
    try {
      for (const stack of [...this.devicePools, this.hostPool]) stack.pool.release();
    } finally {
      this.backend.settleReleases();
    }
  }

  /** For tests and the fuzz invariant: every pool's blocks add up to its used bytes. */
  checkInvariants(): void {
    for (const stack of [...this.devicePools, this.hostPool]) stack.pool.checkInvariants();
  }
}

/** One pool's segments and blocks (MemoryManager.snapshot). */
export interface PoolSnapshot {
  pool: string;
  segments: SegmentSnapshot[];
}
