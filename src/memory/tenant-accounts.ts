/**
 * Tenants' accounting over the daemon's pools (the memory manager holds one TenantAccounts): per tenant,
 * one QuotaAdaptor per pool (its usage and hard quota), its device guarantee, its MMAP files, its live
 * arrays (max_arrays), leases and workspaces, and from those its share of the daemon's heap (HeapGuard's
 * fair share).
 */
import { TensormemError } from '../errors';
import { HEAP_COST } from './heap-guard';
import type { HeapGuard, HeapShare } from './heap-guard';
import type { QuotaAdaptor } from './quota-adaptor';

export interface TenantUsageBytes {
  deviceBytes: number[];
  hostBytes: number;
  /** Bytes of the tenant's mapped MMAP workspace files. */
  mmapBytes: number;
  /** Live arrays of its leases. */
  arrays: number;
  /** Mappings its memory holds, one at a time (--max-mapped-regions counts them for all tenants): regions of its own for exportable arrays, and MMAP workspaces' file mappings. */
  mappedRegions: number;
}

/** A tenant's hard quotas (per device; host; its MMAP files) and device guarantee, in bytes; 0 = none. */
export interface TenantLimits {
  deviceQuotaBytes: number;
  hostQuotaBytes: number;
  mmapQuotaBytes: number;
  deviceGuaranteeBytes: number;
  /** Most live arrays of all the tenant's leases together (the tenants file's max_arrays); 0 = no limit. */
  maxArrays: number;
  /** Most mapped regions of all its leases together (the tenants file's max_mapped_regions); 0 = no limit. */
  maxMappedRegions: number;
}

const NO_TENANT_LIMITS: TenantLimits = { deviceQuotaBytes: 0, hostQuotaBytes: 0, mmapQuotaBytes: 0, deviceGuaranteeBytes: 0, maxArrays: 0, maxMappedRegions: 0 };

export interface TenantAccount {
  tenant: string;
  guaranteeBytes: number;
  /** One quota adaptor per device pool. */
  device: QuotaAdaptor[];
  host: QuotaAdaptor;
  /** Its mapped MMAP workspace files: bytes and count, and its quota.mmap (0 = none). */
  mmap: { usedBytes: number; files: number; quotaBytes: number };
  /** Live arrays of its leases (countArrays), arrays being made (reserveArray), and its max_arrays (0 = none). */
  arrays: { count: number; making: number; max: number };
  /** Its mapped regions (MemoryManager counts them) and its max_mapped_regions (0 = none). */
  regions: { count: number; max: number };
  /** Its open leases (countLeases) and workspaces (countWorkspaces), and the heap both keep at HEAP_COST (with their labels and names): with its arrays, its share of the daemon's heap (heapShareOf). */
  leases: number;
  workspaces: number;
  objectHeapBytes: number;
  /** Allocations under way: a chunk taken for one may run the lease sweep (--maxphysicalbytes relief), which must not drop the account meanwhile. */
  allocating: number;
}

/**
 * Every tenant's account: its quota adaptors over the pools (made on first use with the limits in force),
 * its device guarantee, its MMAP files, array and lease counts, and its share of the daemon's heap. The
 * tenants file's tenants keep theirs while idle; any other tenant's goes once it holds nothing and has
 * no lease (releaseIdle).
 */
/** What of a device guarantee of `guaranteeBytes` a tenant using `usedBytes` of the device leaves unused. */
function unusedGuarantee(guaranteeBytes: number, usedBytes: number): number {
  return Math.max(0, guaranteeBytes - usedBytes);
}

export class TenantAccounts {
  private readonly tenants = new Map<string, TenantAccount>();
  /**
   * The accounts with a device guarantee, whose unused part every device allocation needs while any is
   * in force (unusedGuarantees): a walk over every account made each allocation O(tenants) (1,000
   * tenants, one of them with a guarantee: AllocateArray + FreeArray 14 -> 47 µs).
   */
  private readonly guaranteed = new Set<TenantAccount>();
  /**
   * Σ max(0, guarantee − used) over the guaranteed accounts, by device, kept as their guarantees and
   * usage change: every device allocation asks it (othersUnusedGuaranteeBytes), and a walk over the
   * guaranteed accounts cost 45 ns each (10,000 of them: AllocateArray + FreeArray 462 µs).
   */
  private readonly unusedGuarantees: number[];
  /** The tenants file's tenants: their accounts stay while idle; any other tenant's goes once it holds nothing and has no lease. */
  private declared = new Set<string>();
  private limitsOf: (tenant: string) => TenantLimits = () => NO_TENANT_LIMITS;

  constructor(
    /** A new account's quota adaptors: one per device pool, and the host pool's. */
    private readonly quotasFor: (tenant: string, limits: TenantLimits) => { device: QuotaAdaptor[]; host: QuotaAdaptor },
    private readonly deviceCount: number,
    private readonly heapGuard?: HeapGuard,
  ) {
    this.unusedGuarantees = Array.from({ length: deviceCount }, () => 0);
  }

  /** Whether any tenant has a device guarantee (then device requests pass the guarantee policy). */
  get guaranteesInForce(): boolean {
    return this.guaranteed.size > 0;
  }

  /** The tenant's quota adaptors over every pool, made on first use with the limits in force. */
  account(tenant = ''): TenantAccount {
    let account = this.tenants.get(tenant);
    if (!account) {
      const limits = this.limitsOf(tenant);
      account = {
        tenant,
        guaranteeBytes: 0,
        ...this.quotasFor(tenant, limits),
        mmap: { usedBytes: 0, files: 0, quotaBytes: limits.mmapQuotaBytes },
        arrays: { count: 0, making: 0, max: limits.maxArrays },
        regions: { count: 0, max: limits.maxMappedRegions },
        leases: 0,
        workspaces: 0,
        objectHeapBytes: 0,
        allocating: 0,
      };
      this.tenants.set(tenant, account);
      const made = account;
      made.device.forEach((quota, device) => {
        quota.onUsedChange = (usedBefore) => {
          if (this.guaranteed.has(made)) this.unusedGuarantees[device] += unusedGuarantee(made.guaranteeBytes, quota.usedBytes) - unusedGuarantee(made.guaranteeBytes, usedBefore);
        };
      });
      this.setGuarantee(account, limits.deviceGuaranteeBytes);
    }
    return account;
  }

  /** Gives `account` a device guarantee of `bytes` (0: none), counting its unused part in unusedGuarantees. */
  private setGuarantee(account: TenantAccount, bytes: number): void {
    if (this.guaranteed.delete(account)) this.countUnused(account, -1);
    account.guaranteeBytes = bytes;
    if (bytes > 0) {
      this.guaranteed.add(account);
      this.countUnused(account, 1);
    }
  }

  /** Adds (`sign` 1) or takes out (-1) `account`'s unused guarantee on every device. */
  private countUnused(account: TenantAccount, sign: 1 | -1): void {
    account.device.forEach((quota, device) => (this.unusedGuarantees[device] += sign * unusedGuarantee(account.guaranteeBytes, quota.usedBytes)));
  }

  /**
   * Where tenants' quotas and guarantees come from (the tenants file); called again for every tenant
   * when the file is reloaded. Lowering a quota below current use refuses new allocations only.
   */
  setLimits(limits: (tenant: string) => TenantLimits): void {
    this.limitsOf = limits;
    for (const account of this.tenants.values()) {
      const next = limits(account.tenant);
      this.setGuarantee(account, next.deviceGuaranteeBytes);
      for (const quota of account.device) quota.quotaBytes = next.deviceQuotaBytes;
      account.host.quotaBytes = next.hostQuotaBytes;
      account.mmap.quotaBytes = next.mmapQuotaBytes;
      account.arrays.max = next.maxArrays;
      account.regions.max = next.maxMappedRegions;
    }
  }

  /**
   * Registers the tenants file's tenants up front (so that their guarantees are reserved before they
   * allocate anything); `names` is the whole file, and replaces the previous call's. A tenant a reload
   * drops keeps its account while it holds memory or leases (see releaseIdle).
   */
  declare(names: string[]): void {
    this.declared = new Set(names);
    for (const name of names) this.account(name);
  }

  /**
   * Forgets the account of a tenant that is not in the tenants file and holds no bytes (its last lease
   * closed): in open mode any client-chosen name makes one, and each would otherwise keep a row in
   * GetMemoryInfo and its series on /metrics for ever. Returns whether it was dropped. The caller
   * knows the tenant has no open lease; a later allocation makes a fresh account.
   */
  releaseIdle(tenant: string): boolean {
    const account = this.tenants.get(tenant);
    if (!account || this.declared.has(tenant) || account.allocating > 0) return false;
    if (account.host.usedBytes > 0 || account.host.allocationCount > 0 || account.mmap.files > 0 || account.arrays.count > 0 || account.arrays.making > 0 || account.leases > 0 || account.workspaces > 0) return false;
    if (account.device.some((quota) => quota.usedBytes > 0 || quota.allocationCount > 0)) return false;
    this.tenants.delete(tenant);
    if (this.guaranteed.delete(account)) this.countUnused(account, -1);
    return true;
  }

  /** releaseIdle for every tenant without an open lease (bytes freed after a lease closed, e.g. a view still lent then). */
  releaseAllIdle(hasLease: (tenant: string) => boolean): void {
    // A Map's iteration goes on past the entry deleted under it: no copy of every name.
    for (const tenant of this.tenants.keys()) {
      if (!hasLease(tenant)) this.releaseIdle(tenant);
    }
  }

  /** Σ max(0, guarantee − used) on `device` over every tenant but `tenant`: the share of the pool `tenant` may not take. */
  othersUnusedGuaranteeBytes(device: number, tenant: string): number {
    if (!this.guaranteesInForce) return 0;
    const own = this.tenants.get(tenant);
    const ownUnused = own && this.guaranteed.has(own) ? unusedGuarantee(own.guaranteeBytes, own.device[device].usedBytes) : 0;
    return this.unusedGuarantees[device] - ownUnused;
  }

  /** Whether `tenant` has an account (a name names() lists, unless empty). */
  has(tenant: string): boolean {
    return this.tenants.has(tenant);
  }

  /** A tenant's usage and limits; asking makes no account (a tenant without one holds nothing). */
  usage(tenant: string): TenantUsageBytes & TenantLimits {
    const account = this.tenants.get(tenant);
    if (!account) {
      const limits = this.limitsOf(tenant);
      return { ...limits, deviceBytes: Array.from({ length: this.deviceCount }, () => 0), hostBytes: 0, mmapBytes: 0, arrays: 0, mappedRegions: 0 };
    }
    return {
      deviceBytes: account.device.map((quota) => quota.usedBytes),
      hostBytes: account.host.usedBytes,
      mmapBytes: account.mmap.usedBytes,
      deviceQuotaBytes: account.device[0]?.quotaBytes ?? 0,
      hostQuotaBytes: account.host.quotaBytes,
      mmapQuotaBytes: account.mmap.quotaBytes,
      // As max_arrays counts them: an array being made (zeroed off the event loop) holds its bytes in the
      // figures above already, and a place under max_arrays.
      arrays: account.arrays.count + account.arrays.making,
      maxArrays: account.arrays.max,
      mappedRegions: account.regions.count,
      maxMappedRegions: account.regions.max,
      deviceGuaranteeBytes: account.guaranteeBytes,
    };
  }

  names(): string[] {
    return [...this.tenants.keys()].filter((name) => name !== '');
  }

  /**
   * `tenant`'s estimated share of the daemon's heap (HEAP_COST of its live arrays, open leases with their
   * labels, and workspaces) when it is more than the average of the tenants that hold any, or all of it
   * while the tenants file names another tenant (one that holds nothing now still needs room to open a
   * lease); undefined otherwise (also for the only tenant of a daemon).
   */
  heapShareOf(tenant: string): HeapShare | undefined {
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
    return this.declared.size > (this.declared.has(tenant) ? 1 : 0) ? { tenant, heldBytes, totalBytes, tenants } : undefined;
  }

  /** `tenant` has `delta` more (or fewer) open leases, keeping `heapBytes` of the daemon's heap each (LeaseRegistry). */
  countLeases(tenant: string, delta: number, heapBytes: number): void {
    const account = this.account(tenant);
    account.leases += delta;
    account.objectHeapBytes += delta * heapBytes;
    if (delta < 0) this.heapGuard?.release(-delta * heapBytes);
  }

  /** `tenant` has `delta` more (or fewer) workspaces, keeping `heapBytes` of the daemon's heap each (a lease's WorkspaceRegistry). */
  countWorkspaces(tenant: string, delta: number, heapBytes: number): void {
    const account = this.account(tenant);
    account.workspaces += delta;
    account.objectHeapBytes += delta * heapBytes;
    if (delta < 0) this.heapGuard?.release(-delta * heapBytes);
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

  /**
   * Refuses one more mapped region of `account`'s tenant at its max_mapped_regions (QUOTA_EXCEEDED):
   * --max-mapped-regions is one cap for all tenants, and one tenant at it would keep every other
   * tenant's exports and MMAP workspaces out. `what` names the region for the message.
   */
  checkMappedRegion(account: TenantAccount, what: string): void {
    const { count, max } = account.regions;
    if (max > 0 && count >= max) {
      throw new TensormemError(
        'RESOURCE_EXHAUSTED',
        'QUOTA_EXCEEDED',
        `Can't map ${what}: tenant "${account.tenant}" holds ${count} mapped regions (exported arrays' regions and MMAP workspaces), its max_mapped_regions is ${max}: free exported arrays or destroy MMAP workspaces first`,
        { tenant: account.tenant, mapped_regions: String(count), max_mapped_regions: String(max) },
      );
    }
  }

  /** A lease of `tenant` holds `delta` more (or fewer) live arrays (Lease's array map). */
  countArrays(tenant: string, delta: number): void {
    this.account(tenant).arrays.count += delta;
    if (delta < 0) this.heapGuard?.release(-delta * HEAP_COST.array);
  }
}
