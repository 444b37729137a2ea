/**
 * The daemon's memory: one pool per device and one host pool, each composed as
 * StatisticsAdaptor(LimitingAdaptor(PoolResource(chunks from the backend))); every tenant reaches
 * them through its own QuotaAdaptor per pool (its usage and hard quota), and device requests also
 * pass the guarantee policy. Plus the physical guard. Also moves bytes between Node buffers and blocks, off the event loop
 * at or above the async threshold.
 */
import { MmapLimitError, QuotaExceededError, TensormemError, invalidArgument, mirrorRefusal } from '../errors';
import { statSync, unlinkSync } from 'node:fs';
import type { DeviceMemoryInfo, NativeBackend } from '../native/backend';
import { isNativeError } from '../native/backend';
import type { AllocateOptions, Block, BlockOwner, ResourceStats, SegmentSnapshot } from './memory-resource';
import type { PoolCapture } from './pool-capture';
import { PoolResource } from './pool-resource';
import { BackendChunkSource } from './backend-chunk-source';
import { MappedRegions } from './mapped-regions';
import { LimitingAdaptor } from './limiting-adaptor';
import { StatisticsAdaptor } from './statistics-adaptor';
import type { PhysicalMemoryGuard } from './physical-memory-guard';
import { HEAP_COST } from './heap-guard';
import type { HeapGuard, HeapShare } from './heap-guard';
import { QuotaAdaptor } from './quota-adaptor';
import { MemoryWaitQueue } from './memory-wait-queue';
import { MmapFiles, defaultMmapDir } from './mmap-files';
import { GuaranteeHolder, checkGuarantees } from './guarantee-policy';
import type { ResolvedLimits } from './limits';

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
}

interface PoolStack {
  pool: PoolResource;
  top: StatisticsAdaptor;
  limiter: LimitingAdaptor;
}

export interface TenantUsageBytes {
  deviceBytes: number[];
  hostBytes: number;
  /** Bytes of the tenant's mapped MMAP workspace files. */
  mmapBytes: number;
  /** Live arrays of its leases. */
  arrays: number;
}

/** A tenant's hard quotas (per device; host; its MMAP files) and device guarantee, in bytes; 0 = none. */
export interface TenantLimits {
  deviceQuotaBytes: number;
  hostQuotaBytes: number;
  mmapQuotaBytes: number;
  deviceGuaranteeBytes: number;
  /** Most live arrays of all the tenant's leases together (the tenants file's max_arrays); 0 = no limit. */
  maxArrays: number;
}

const NO_TENANT_LIMITS: TenantLimits = { deviceQuotaBytes: 0, hostQuotaBytes: 0, mmapQuotaBytes: 0, deviceGuaranteeBytes: 0, maxArrays: 0 };

interface TenantAccount {
  tenant: string;
  guaranteeBytes: number;
  /** One quota adaptor per device pool. */
  device: QuotaAdaptor[];
  host: QuotaAdaptor;
  /** Its mapped MMAP workspace files: bytes and count, and its quota.mmap (0 = none). */
  mmap: { usedBytes: number; files: number; quotaBytes: number };
  /** Live arrays of its leases (countArrays), arrays being made (reserveArray), and its max_arrays (0 = none). */
  arrays: { count: number; making: number; max: number };
  /** Its open leases (countLeases) and workspaces (countWorkspaces), and the heap both keep at HEAP_COST (with their labels and names): with its arrays, its share of the daemon's heap (heapShareOf). */
  leases: number;
  workspaces: number;
  objectHeapBytes: number;
  /** Allocations under way: a chunk taken for one may run the lease sweep (--maxphysicalbytes relief), which must not drop the account meanwhile. */
  allocating: number;
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
  private readonly tenants = new Map<string, TenantAccount>();
  /** The tenants file's tenants: their accounts stay while idle; any other tenant's goes once it holds nothing and has no lease. */
  private declaredTenants = new Set<string>();
  private tenantLimits: (tenant: string) => TenantLimits = () => NO_TENANT_LIMITS;
  private guaranteesInForce = false;
  private readonly waitQueues: MemoryWaitQueue[];

  /** Where MMAP workspace files live (--mmap-dir), by tenant. */
  readonly mmapFiles: MmapFiles;
  /** Dedicated chunks and MMAP mappings held, against --max-mapped-regions. */
  private readonly mappedRegions: MappedRegions;

  constructor(
    readonly backend: NativeBackend,
    readonly limits: ResolvedLimits,
    private readonly options: MemoryManagerOptions,
    readonly physical: PhysicalMemoryGuard,
  ) {
    this.mmapFiles = new MmapFiles(options.mmapDir ?? defaultMmapDir());
    this.mappedRegions = new MappedRegions(options.maxMappedRegions ?? 0);
    if (options.heapGuard) options.heapGuard.fairShareOf = (tenant) => this.heapShareOf(tenant);
    const devices = Array.from({ length: backend.deviceCount() }, (_, index) => backend.deviceInfo(index));
    this.deviceNames = devices.map((device) => device.name);
    this.devicePools = devices.map((device, index) => this.stack('DEVICE', index, limits.maxBytes[index], 'pool cap (maxbytes)', backend.name === 'host'));
    this.hostPool = this.stack('HOST', undefined, limits.hostMaxBytes, 'host cap (host-maxbytes)', true);
    this.waitQueues = this.devicePools.map(
      (stack, index) =>
        new MemoryWaitQueue(() => {
          const stats = stack.top.stats();
          return { device: index, capName: 'pool cap (maxbytes)', capBytes: limits.maxBytes[index], usedBytes: stats.usedBytes, largestFreeBlockBytes: stats.largestFreeBlockBytes };
        }),
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

  /** A request for `device` that a check standing for its pool's cap refused before the pool saw it (a cuDNN scratch's budget): counted in the pool's failed allocations. */
  countDeviceRefusal(device: number): void {
    this.devicePool(device).top.countRefusal();
  }

  /** Validates a device index (INVALID_ARGUMENT naming `device`). */
  checkDevice(device: number): void {
    this.devicePool(device);
  }

  allocateDevice(device: number, bytes: number, owner: BlockOwner, options?: AllocateOptions): Block {
    const stack = this.devicePool(device);
    const account = this.account(owner.tenant);
    const quota = account.device[device];
    if (this.guaranteesInForce) {
      // The tenant's own quota is reported before others' guarantees; without guarantees, allocate() checks it.
      quota.check(bytes, options);
      const stats = stack.top.stats();
      try {
        checkGuarantees(device, account.tenant, quota.alignedSize(bytes, options), bytes, { usedBytes: stats.usedBytes, capBytes: this.limits.maxBytes[device], largestFreeBlockBytes: stats.largestFreeBlockBytes }, this.guaranteeHolders(device), quota);
      } catch (error) {
        // The pool cap less others' guarantees refused it: the pool's failed allocations count it, as they count the cap's own refusals.
        stack.top.countRefusal(options);
        throw error;
      }
    }
    const block = this.allocatingIn(account, () => quota.allocate(bytes, owner, options));
    this.scrubDedicatedTail(block, bytes, options);
    return block;
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

  /** Runs `allocate` with the account marked busy, so that releaseIdleTenant keeps it (see TenantAccount.allocating). */
  private allocatingIn(account: TenantAccount, allocate: () => Block): Block {
    account.allocating++;
    try {
      return allocate();
    } finally {
      account.allocating--;
    }
  }

  deallocateDevice(device: number, block: Block): void {
    this.account(block.owner.tenant).device[device].deallocate(block);
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
    const account = this.account(owner.tenant);
    // A file mapped already (createBytes 0: as it is) is charged already; only growth since counts.
    const charged = options.deleteOnFree ? undefined : this.mappedFiles.get(this.fileKey(owner.tenant ?? '', path) ?? '');
    this.checkMmapLimits(account, options.createBytes > 0 ? options.createBytes : Math.max(0, fileLength(path) - (charged?.bytes ?? 0)));
    // Each workspace maps its file anew, also a file mapped already and charged once: counted by mapping.
    this.mappedRegions.check(`${path} for an MMAP workspace`);
    let mapped: { handle: number; bytes: number };
    try {
      mapped = this.backend.mapFile(path, options);
    } catch (error) {
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
    const account = this.account(block.owner.tenant);
    account.mmap.files--;
    const key = this.fileOfChunk.get(block.chunkHandle);
    this.fileOfChunk.delete(block.chunkHandle);
    const file = key === undefined ? undefined : this.mappedFiles.get(key);
    if (file && --file.mappings > 0) return;
    if (key !== undefined) this.mappedFiles.delete(key);
    const bytes = file?.bytes ?? block.bytes;
    this.hostCategoryBytes.mmap -= bytes;
    account.mmap.usedBytes -= bytes;
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
   * `tenant`'s estimated share of the daemon's heap (HEAP_COST of its live arrays, open leases with their
   * labels, and workspaces) when it is more than the average of the tenants that hold any, or all of it
   * while the tenants file names another tenant (one that holds nothing now still needs room to open a
   * lease); undefined otherwise (also for the only tenant of a daemon).
   */
  private heapShareOf(tenant: string): HeapShare | undefined {
    const heldBy = (account: TenantAccount) => (account.arrays.count + account.arrays.making) * HEAP_COST.array + account.objectHeapBytes;
    let totalBytes = 0;
    let tenants = 0;
    for (const account of this.tenants.values()) {
      const held = heldBy(account);
      totalBytes += held;
      if (held > 0) tenants++;
    }
    const account = this.tenants.get(tenant);
    const heldBytes = account ? heldBy(account) : 0;
    if (heldBytes === 0) return undefined;
    if (tenants > 1) return heldBytes * tenants > totalBytes ? { tenant, heldBytes, totalBytes, tenants } : undefined;
    // The only tenant holding any: over its share when the tenants file names others (idle now).
    return this.declaredTenants.size > (this.declaredTenants.has(tenant) ? 1 : 0) ? { tenant, heldBytes, totalBytes, tenants } : undefined;
  }

  /** `tenant` has `delta` more (or fewer) open leases, keeping `heapBytes` of the daemon's heap each (LeaseRegistry). */
  countLeases(tenant: string, delta: number, heapBytes: number): void {
    const account = this.account(tenant);
    account.leases += delta;
    account.objectHeapBytes += delta * heapBytes;
    if (delta < 0) this.options.heapGuard?.release(-delta * heapBytes);
  }

  /** `tenant` has `delta` more (or fewer) workspaces, keeping `heapBytes` of the daemon's heap each (a lease's WorkspaceRegistry). */
  countWorkspaces(tenant: string, delta: number, heapBytes: number): void {
    const account = this.account(tenant);
    account.workspaces += delta;
    account.objectHeapBytes += delta * heapBytes;
    if (delta < 0) this.options.heapGuard?.release(-delta * heapBytes);
  }

  /**
   * Refuses a new array of `tenant` at its max_arrays (QUOTA_EXCEEDED): every array costs the daemon's
   * heap whatever its bytes, so a tenant leaking small arrays would otherwise take the heap to its line
   * (HEAP_LIMIT) for every tenant. Otherwise holds a place for the array while it is being made (its
   * zeroing may run off the event loop): arrays made at the same time count against the cap together.
   * The caller calls the returned function once the array is in its lease's map (countArrays), or failed.
   */
  reserveArray(tenant: string): () => void {
    const account = this.account(tenant);
    const { count, max } = account.arrays;
    const held = count + account.arrays.making;
    if (max > 0 && held >= max) {
      throw new TensormemError('RESOURCE_EXHAUSTED', 'QUOTA_EXCEEDED', `tenant "${tenant}" has ${held} live arrays, its max_arrays is ${max}: free arrays first`, {
        tenant,
        arrays: String(held),
        max_arrays: String(max),
      });
    }
    account.arrays.making++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      account.arrays.making--;
    };
  }

  /** A lease of `tenant` holds `delta` more (or fewer) live arrays (Lease's array map). */
  countArrays(tenant: string, delta: number): void {
    this.account(tenant).arrays.count += delta;
    if (delta < 0) this.options.heapGuard?.release(-delta * HEAP_COST.array);
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
    const account = this.account(owner.tenant);
    let block: Block;
    try {
      block = this.allocatingIn(account, () => account.host.allocate(bytes, owner, options));
    } catch (error) {
      throw category === 'mirror' && owner.arrayId !== undefined ? mirrorRefusal(error, owner.arrayId) : error;
    }
    this.hostCategoryBytes[category] += block.bytes;
    this.scrubDedicatedTail(block, bytes, options);
    return block;
  }

  deallocateHost(block: Block, category: HostCategory): void {
    this.account(block.owner.tenant).host.deallocate(block);
    this.hostCategoryBytes[category] -= block.bytes;
  }

  /** The tenant's quota adaptors over every pool, made on first use with the limits in force. */
  private account(tenant = ''): TenantAccount {
    let account = this.tenants.get(tenant);
    if (!account) {
      const limits = this.tenantLimits(tenant);
      account = {
        tenant,
        guaranteeBytes: limits.deviceGuaranteeBytes,
        device: this.devicePools.map((stack, index) => new QuotaAdaptor(stack.top, tenant, limits.deviceQuotaBytes, 'DEVICE', index)),
        host: new QuotaAdaptor(this.hostPool.top, tenant, limits.hostQuotaBytes, 'HOST'),
        mmap: { usedBytes: 0, files: 0, quotaBytes: limits.mmapQuotaBytes },
        arrays: { count: 0, making: 0, max: limits.maxArrays },
        leases: 0,
        workspaces: 0,
        objectHeapBytes: 0,
        allocating: 0,
      };
      this.tenants.set(tenant, account);
    }
    return account;
  }

  /**
   * Where tenants' quotas and guarantees come from (the tenants file); called again for every tenant
   * when the file is reloaded. Lowering a quota below current use refuses new allocations only.
   * Requests waiting for device memory are tried again: a guarantee lowered or dropped leaves others room.
   */
  setTenantLimits(limits: (tenant: string) => TenantLimits): void {
    this.tenantLimits = limits;
    for (const account of this.tenants.values()) {
      const next = limits(account.tenant);
      account.guaranteeBytes = next.deviceGuaranteeBytes;
      for (const quota of account.device) quota.quotaBytes = next.deviceQuotaBytes;
      account.host.quotaBytes = next.hostQuotaBytes;
      account.mmap.quotaBytes = next.mmapQuotaBytes;
      account.arrays.max = next.maxArrays;
    }
    this.updateGuaranteesInForce();
    for (const queue of this.waitQueues) queue.notifyFreed();
  }

  private updateGuaranteesInForce(): void {
    this.guaranteesInForce = [...this.tenants.values()].some((account) => account.guaranteeBytes > 0);
  }

  /**
   * Registers the tenants file's tenants up front (so that their guarantees are reserved before they
   * allocate anything); `names` is the whole file, and replaces the previous call's. A tenant a reload
   * drops keeps its account while it holds memory or leases (see releaseIdleTenant).
   */
  declareTenants(names: string[]): void {
    this.declaredTenants = new Set(names);
    for (const name of names) this.account(name);
    this.updateGuaranteesInForce();
  }

  /**
   * Forgets the account of a tenant that is not in the tenants file and holds no bytes (its last lease
   * closed): in open mode any client-chosen name makes one, and each would otherwise keep a row in
   * GetMemoryInfo and its series on /metrics for ever. Returns whether it was dropped. The caller
   * knows the tenant has no open lease; a later allocation makes a fresh account.
   */
  releaseIdleTenant(tenant: string): boolean {
    const account = this.tenants.get(tenant);
    if (!account || this.declaredTenants.has(tenant) || account.allocating > 0) return false;
    if (account.host.usedBytes > 0 || account.host.allocationCount > 0 || account.mmap.files > 0 || account.arrays.count > 0 || account.arrays.making > 0 || account.leases > 0 || account.workspaces > 0) return false;
    if (account.device.some((quota) => quota.usedBytes > 0 || quota.allocationCount > 0)) return false;
    this.tenants.delete(tenant);
    if (account.guaranteeBytes > 0) this.updateGuaranteesInForce();
    return true;
  }

  /** releaseIdleTenant for every tenant without an open lease (bytes freed after a lease closed, e.g. a view still lent then). */
  releaseIdleTenants(hasLease: (tenant: string) => boolean): void {
    for (const tenant of [...this.tenants.keys()]) {
      if (!hasLease(tenant)) this.releaseIdleTenant(tenant);
    }
  }

  /** Σ max(0, guarantee − used) on `device` over every tenant but `tenant`: the share of the pool `tenant` may not take. */
  othersUnusedGuaranteeBytes(device: number, tenant: string): number {
    this.devicePool(device);
    if (!this.guaranteesInForce) return 0;
    let bytes = 0;
    for (const holder of this.guaranteeHolders(device)) {
      if (holder.tenant !== tenant) bytes += Math.max(0, holder.guaranteeBytes - holder.usedBytes);
    }
    return bytes;
  }

  private *guaranteeHolders(device: number): Iterable<GuaranteeHolder> {
    for (const account of this.tenants.values()) {
      if (account.guaranteeBytes > 0) yield { tenant: account.tenant, guaranteeBytes: account.guaranteeBytes, usedBytes: account.device[device].usedBytes };
    }
  }

  /** A tenant's usage and limits; asking makes no account (a tenant without one holds nothing). */
  tenantUsage(tenant: string): TenantUsageBytes & TenantLimits {
    const account = this.tenants.get(tenant);
    if (!account) {
      const limits = this.tenantLimits(tenant);
      return { ...limits, deviceBytes: this.devicePools.map(() => 0), hostBytes: 0, mmapBytes: 0, arrays: 0 };
    }
    return {
      deviceBytes: account.device.map((quota) => quota.usedBytes),
      hostBytes: account.host.usedBytes,
      mmapBytes: account.mmap.usedBytes,
      deviceQuotaBytes: account.device[0]?.quotaBytes ?? 0,
      hostQuotaBytes: account.host.quotaBytes,
      mmapQuotaBytes: account.mmap.quotaBytes,
      arrays: account.arrays.count,
      maxArrays: account.arrays.max,
      deviceGuaranteeBytes: account.guaranteeBytes,
    };
  }

  tenantNames(): string[] {
    return [...this.tenants.keys()].filter((name) => name !== '');
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
