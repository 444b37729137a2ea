/**
 * A lease: a client's claim on memory, and the owner of its arrays (ND4J's thread plays this role for
 * workspaces). Everything it holds is freed when it is closed or expires.
 */
import { OutOfMemoryError, QuotaExceededError, TensormemError, invalidArgument, notFound } from '../errors';
import { formatBytes, formatIec } from '../units';
import type { ScratchBudget } from '../memory/cudnn-convolution';
import { byteSizeOf, DataTypeName } from '../memory/data-types';
import type { MemoryManager } from '../memory/memory-manager';
import type { AllocateOptions } from '../memory/memory-resource';
import { ArrayHome, arrayHomeOutgrown, PlacementName, TensorArray } from '../memory/tensor-array';
import type { MemoryWaitQueue, WaitHandle } from '../memory/memory-wait-queue';
import type { Workspace } from '../memory/workspace';
import type { WorkspaceBufferOptions } from '../memory/workspace-backing';
import { WorkspaceRegistry } from '../memory/workspace-registry';
import { PoolWorkspaceBacking } from '../memory/pool-workspace-backing';
import { HEAP_COST } from '../memory/heap-guard';
import { CountedArrayMap } from './counted-array-map';
import { randomIds } from './random-ids';

/** Thrown by a workspace allocation that would take pool memory while others wait for it (createAttachedWaiting): it queues instead. */
const QUEUE_TURN = Symbol('queue turn');

/** What a lease without workspaces holds in them. */
const NO_WORKSPACE_BYTES = Object.freeze({ deviceBytes: 0, hostBytes: 0, mmapBytes: 0 });

/** A wait_for_memory retry's workspace buffers: the pool counted the request's refusal already. */
const RETRY_BUFFERS: WorkspaceBufferOptions = { retry: true };

/**
 * Which cycle a workspace is in: a new one begins at each enter, ends at each leave; destroyed ends it
 * for good. A waiting allocation goes only into the cycle it was asked for.
 */
function workspaceCycle(workspace: Workspace): string {
  const info = workspace.info();
  return `${info.generationId}/${info.cyclesCount}/${workspace.isDestroyed}`;
}

export interface AllocateParams {
  dataType: string;
  shape: readonly unknown[];
  placement: string;
  device: number;
  workspaceId: string;
  zero: boolean;
  label: string;
  requestId: string;
  /** Own memory regions from the start, so that ExportArray needs no copy (AllocateArrayRequest.exportable). */
  exportable?: boolean;
  /** Backpressure: wait up to waitMs for device memory instead of failing fast. */
  waitForMemory?: { waitMs: number; onHandle?: (handle: WaitHandle) => void };
  /** Every byte is copied in before any client can see the array (DuplicateArray): no scrub needed. */
  overwritten?: boolean;
}

/** Why a lease ended: CloseLease, its TTL, the daemon stopping, an admin's EvictLease, or its KeepAlive stream ending (release_on_disconnect). */
export type LeaseCloseReason = 'closed' | 'expired' | 'shutdown' | 'evicted' | 'disconnected';

const CLOSED_BECAUSE: Record<LeaseCloseReason, string> = {
  closed: 'was closed by CloseLease',
  expired: 'has expired',
  shutdown: 'was closed: the daemon is shutting down',
  evicted: 'was evicted by an admin',
  disconnected: 'was released when its KeepAlive stream ended (release_on_disconnect)',
};

/**
 * What a closed lease's token gets, and its calls in flight or waiting for memory: UNAUTHENTICATED
 * with reason LEASE_EXPIRED whatever closed it, so that a client has one signal to open a new lease,
 * and a message (and ErrorInfo metadata close_reason) that says why.
 */
export function leaseClosedError(leaseId: string, reason: LeaseCloseReason | undefined): TensormemError {
  const why = reason === undefined ? 'is closed' : CLOSED_BECAUSE[reason];
  const next = reason === 'shutdown' ? '' : ': open a new lease';
  return new TensormemError('UNAUTHENTICATED', 'LEASE_EXPIRED', `lease ${leaseId} ${why}${next}`, {
    lease_id: leaseId,
    ...(reason === undefined ? {} : { close_reason: reason }),
  });
}

/**
 * How many ids of retired arrays (attached arrays whose workspace moved to a newer generation or was
 * destroyed) a lease remembers, so that using one still answers FAILED_PRECONDITION with ND4J's
 * outdated / leaked workspace pointer message. Older ids are forgotten (NOT_FOUND). About 0.5 KiB each.
 */
export const RETIRED_ARRAYS_KEPT = 1024;

/** The label of cuDNN scratch arrays (AcquireCudnnWorkspace). */
export const CUDNN_SCRATCH_LABEL = 'cudnn-scratch';

const PLACEMENTS: Record<string, PlacementName> = {
  PLACEMENT_UNSPECIFIED: 'PLACEMENT_DEVICE',
  PLACEMENT_DEVICE: 'PLACEMENT_DEVICE',
  PLACEMENT_HOST_ONLY: 'PLACEMENT_HOST_ONLY',
};

export function parsePlacement(placement: unknown, field = 'placement'): PlacementName {
  const name = typeof placement === 'string' ? PLACEMENTS[placement] : undefined;
  if (!name) throw invalidArgument(field, 'PLACEMENT_DEVICE or PLACEMENT_HOST_ONLY', placement);
  return name;
}

/** A new array id, `arr-` and 96 random bits in hex (random-ids.ts). */
const newArrayId = randomIds('arr-');

/**
 * Refuses a new array in `workspace` when it would be out of scope at once: a workspace that is not
 * circular and whose scope is not open (made current by a borrow only, or named by workspace_id
 * between its cycles). ND4J allocates there (setCurrentWorkspace, leverageTo a closed workspace) and
 * leaves the array readable until the next cycle overwrites it; here every use of such an array is
 * refused as a leaked workspace pointer, so it could only hold memory (a spill) until the workspace is
 * entered again. Nothing is allocated; a circular workspace's arrays outlive their cycle, so it takes
 * arrays between cycles.
 */
function checkScopeOpen(workspace: Workspace): void {
  if (workspace.scopeActive || workspace.circular) return;
  throw new TensormemError(
    'FAILED_PRECONDITION',
    'ARRAY_OUT_OF_SCOPE',
    `Cannot place a new array in workspace "${workspace.name}": its scope is not open, so the array would be out of scope at once (Array uses leaked workspace pointer from workspace ${workspace.name}). ` +
      'Enter the workspace first (EnterWorkspace), or make the array outside workspaces',
    { workspace_id: workspace.workspaceId, workspace_name: workspace.name },
  );
}

/**
 * A lease's ArrayHome on one device. Its callbacks are methods that ask the lease, not two closures
 * (and their context) made for every home.
 */
class LeaseArrayHome implements ArrayHome {
  readonly leaseId: string;
  readonly tenant: string;

  constructor(
    private readonly lease: Lease,
    readonly memory: MemoryManager,
    readonly device: number,
    readonly epochMs: number,
    readonly serialBase: number,
  ) {
    this.leaseId = lease.leaseId;
    this.tenant = lease.tenant;
  }

  leaseEnded(): Error | undefined {
    return this.lease.closed ? this.lease.closedError() : undefined;
  }

  heldChanged(array: TensorArray, deviceBytes: number, hostBytes: number): void {
    this.lease.arrays.held(array, deviceBytes, hostBytes);
  }
}

export class Lease {
  /** When it opened (Date.now()): a number, not a Date (96 bytes more for every lease). */
  readonly createdAtMs = Date.now();
  expiresAtMs: number;
  closed = false;
  /** Why it closed, once it has (LeaseRegistry passes it; the closed-lease error names it). */
  private closeReason: LeaseCloseReason | undefined;
  /** Told once the lease closes (whenClosed): ReadArray streams, which end with it. */
  private closeListeners?: Set<() => void>;
  /** Usable arrays (and attached ones whose workspace has not moved on yet). */
  readonly arrays: CountedArrayMap;
  /**
   * The lease's workspaces and scope stack (ND4J's per-thread workspace manager) and the pools' side of
   * their memory, made on first use (the workspaces getter): most leases never make a workspace, and the
   * two with their maps, scope and closures were about 0.8 KiB of every lease's heap.
   */
  private workspaceRegistry: WorkspaceRegistry | undefined;
  private workspaceBacking: PoolWorkspaceBacking | undefined;
  /**
   * Lease id, tenant, device and memory manager, shared by this lease's arrays on each device; made with
   * the first array, one slot a device (a home put into an empty [] grew it to 17 slots, 0.15 KiB).
   */
  private arrayHomes: ArrayHome[] | undefined;
  /** Attached arrays still in `arrays`, by workspace, so that a cycle retires them without a scan of every array. */
  private attached?: Map<Workspace, Set<TensorArray>>;
  /** Retired arrays, oldest first, at most RETIRED_ARRAYS_KEPT. */
  private retired?: Map<string, TensorArray>;
  /** The cuDNN scratch per device (grow-only). */
  private cudnnScratch?: Map<number, TensorArray>;
  /** Per device: the end of the acquireCudnnScratch calls under way (they run one after the other). */
  private scratchAcquiring?: Map<number, Promise<void>>;
  /**
   * request_id → the allocation it made (in flight or done), for idempotent retries; `arrayId` once it
   * is done. An entry goes when its allocation fails or its array is freed (a retry then allocates anew).
   */
  private requests?: Map<string, { key: string; array: Promise<TensorArray>; arrayId?: string }>;
  /** array id → its request_id, only for live arrays allocated with one, so that freeing drops the entry. */
  private requestOfArray?: Map<string, string>;
  /** Allocations of this lease waiting for device memory (wait_for_memory); close() cancels them. */
  private pendingWaits?: Set<WaitHandle>;
  /** Those of pendingWaits that go into a workspace, with the workspace's cycle when they were asked for (see workspaceCycle). */
  private workspaceWaits?: Map<WaitHandle, { workspace: Workspace; cycle: string }>;
  /**
   * Ids of DuplicateArray copies whose bytes are still being copied in. Their memory is not scrubbed
   * (every byte is about to be overwritten) and so holds, until the copy ends, what the pools' last
   * user left there, possibly another tenant: no call may reach them by id (NOT_FOUND) or list them
   * until then. They are in `arrays` meanwhile, so that their bytes count and a close frees them.
   */
  private filling?: Set<string>;

  /**
   * Where recent ListArrays pages ended, by the serial the next page starts after: the page's iterator
   * over `arrays` (a Map's iterator goes on in order past entries deleted or added since) and the array
   * it had read past the page's end, with that array's serial then. The page with that token goes on from
   * there; any other starts from the first array. Each page scanned from the first array to its start: a
   * listing paged to its end took O(arrays² / page size) (a page after 200,000 arrays: 2.6 ms more than
   * the first page).
   */
  private pageCursors?: Map<number, { iterator: Iterator<TensorArray>; next: TensorArray; nextSerial: number }>;
  static readonly MAX_PAGE_CURSORS = 8;

  constructor(
    readonly leaseId: string,
    readonly tokenHash: string,
    readonly tenant: string,
    readonly clientName: string,
    readonly labels: Record<string, string>,
    public ttlMs: number,
    private readonly memory: MemoryManager,
    private readonly eagerMirror: boolean,
    /** Its place in the order leases were opened (LeaseRegistry: ListLeases pages); 0 outside a registry. */
    readonly serial = 0,
    /** What it keeps of the daemon's heap (HEAP_COST, with its labels): its tenant's share (TenantAccounts.countLeases). */
    readonly heapBytes = 0,
  ) {
    this.expiresAtMs = Date.now() + ttlMs;
    this.arrays = new CountedArrayMap(memory.tenants, tenant);
  }

  /** The lease's workspaces (ND4J's per-thread workspace manager), made on first use. */
  get workspaces(): WorkspaceRegistry {
    return this.workspaceRegistry ?? this.makeWorkspaces();
  }

  /** How many workspaces the lease has (none made on the way, unlike `workspaces`). */
  get workspaceCount(): number {
    return this.workspaceRegistry?.size ?? 0;
  }

  private makeWorkspaces(): WorkspaceRegistry {
    const { memory, tenant } = this;
    const backing = new PoolWorkspaceBacking(memory, { leaseId: this.leaseId, tenant });
    // Made after the lease closed (a call that had it before): refuses memory as close() makes it.
    if (this.closed) backing.close(() => this.closedError());
    this.workspaceBacking = backing;
    return (this.workspaceRegistry = new WorkspaceRegistry({
      backing,
      deviceCount: memory.deviceCount,
      beforeCreate: (name) => memory.checkHeap(HEAP_COST.workspace + 2 * name.length, tenant),
      onCount: (delta, name) => memory.tenants.countWorkspaces(tenant, delta, HEAP_COST.workspace + 2 * name.length),
    }));
  }

  /** What the lease's workspace buffers and mapped files hold (none before its first workspace). */
  private workspaceHeldBytes(): { deviceBytes: number; hostBytes: number; mmapBytes: number } {
    return this.workspaceBacking?.heldBytes() ?? NO_WORKSPACE_BYTES;
  }

  /** When it opened. */
  get createdAt(): Date {
    return new Date(this.createdAtMs);
  }

  renew(ttlMs = this.ttlMs): void {
    this.ttlMs = ttlMs;
    this.expiresAtMs = Date.now() + ttlMs;
  }

  isExpired(now = Date.now()): boolean {
    return now >= this.expiresAtMs;
  }

  private ensureOpen(): void {
    if (this.closed) throw this.closedError();
  }

  /**
   * What a call on a closed lease gets (also a call still waiting for memory when the lease is closed,
   * expires or is evicted): UNAUTHENTICATED with reason LEASE_EXPIRED, as the lease's token gets from
   * then on (LeaseRegistry.authenticate), so that a reason always comes with the one status code.
   */
  closedError(): TensormemError {
    return leaseClosedError(this.leaseId, this.closeReason);
  }

  /** Calls `listener` once the lease closes (at once when it has); returns what forgets it. */
  whenClosed(listener: () => void): () => void {
    if (this.closed) {
      listener();
      return () => undefined;
    }
    (this.closeListeners ??= new Set()).add(listener);
    return () => this.closeListeners?.delete(listener) ?? false;
  }

  /**
   * Validates everything before taking any memory; all or nothing. A device refusal says how much of
   * the pool this lease's cuDNN scratch on that device holds (withScratchOf).
   */
  async allocateArray(params: AllocateParams): Promise<TensorArray> {
    try {
      return await this.allocateArrayNow(params);
    } catch (error) {
      throw this.withScratchOf(error, params.device);
    }
  }

  /**
   * `error` with this lease's cuDNN scratch on `device` (by default, the device refused) added when it
   * is a device out-of-memory there and the lease holds one; other errors as they are. A new error each
   * time: a refusal shared by request_id retries is not told twice.
   */
  private withScratchOf(error: unknown, device?: number): unknown {
    if (!(error instanceof OutOfMemoryError) || error.facts.memory !== 'DEVICE') return error;
    const refused = error.facts.device ?? 0;
    if (device !== undefined && refused !== device) return error;
    const scratch = this.cudnnScratchOf(refused);
    if (!scratch) return error;
    return new OutOfMemoryError({ ...error.facts, cudnnScratch: { arrayId: scratch.arrayId, bytes: scratch.byteSize } });
  }

  private async allocateArrayNow(params: AllocateParams): Promise<TensorArray> {
    this.ensureOpen();
    const byteSize = byteSizeOf(params.dataType, params.shape);
    const placement = parsePlacement(params.placement);
    this.memory.checkDevice(params.device);
    const workspace = this.targetWorkspace(params.workspaceId, byteSize);
    if (workspace && params.exportable) {
      throw invalidArgument('exportable', `false for an array in workspace "${workspace.name}" (an attached array lives in the workspace's buffer; allocate it detached to export it)`, true);
    }
    const shape = params.shape.map(Number);
    if (params.requestId !== '') {
      const key = JSON.stringify([params.dataType, shape, placement, params.device, params.zero, params.label, workspace?.workspaceId ?? '', params.exportable ?? false]);
      for (let previous = this.requests?.get(params.requestId); previous !== undefined; previous = this.requests?.get(params.requestId)) {
        if (previous.key !== key) throw invalidArgument('request_id', 'a request_id not used for a different allocation on this lease', params.requestId);
        let array: TensorArray;
        try {
          array = await previous.array;
        } catch (error) {
          if (this.requests?.get(params.requestId) === previous) throw error;
          // The first call failed (its caller gave up waiting for memory, a refusal): its entry is gone,
          // and this retry goes on as one arriving after that failure would (another retry may have
          // started the allocation anew meanwhile: this one then shares it).
          this.ensureOpen();
          continue;
        }
        const validity = array.attachmentValidity;
        if (!array.isFreed && validity !== 'outdated' && validity !== 'released' && validity !== 'overwritten') return array;
        // Another retry already allocated anew: share that allocation.
        if (this.requests?.get(params.requestId) !== previous) continue;
        // Its memory went back another way (freed, or its workspace moved on to a new generation or
        // was destroyed: the array can never be used again): the retry allocates anew.
        if (this.requestOfArray?.get(array.arrayId) === params.requestId) this.requestOfArray!.delete(array.arrayId);
        break;
      }
      const pending = this.createMaybeWaiting(params, byteSize, placement, shape, workspace);
      const entry: { key: string; array: Promise<TensorArray>; arrayId?: string } = { key, array: pending };
      (this.requests ??= new Map()).set(params.requestId, entry);
      pending.then(
        (array) => {
          if (this.closed || this.requests?.get(params.requestId) !== entry) return;
          entry.arrayId = array.arrayId;
          (this.requestOfArray ??= new Map()).set(array.arrayId, params.requestId);
        },
        () => {
          if (this.requests?.get(params.requestId) === entry) this.requests!.delete(params.requestId);
        },
      );
      return pending;
    }
    return this.createMaybeWaiting(params, byteSize, placement, shape, workspace);
  }

  /**
   * The home of this lease's new arrays on `device`, made on first use and made anew once it is HOME_SPAN
   * old in time or in serials (arrayHomeOutgrown), so that every array's creation time and serial stay
   * small integers however long the lease lives (ArrayHome.epochMs). Arrays keep the home they were made in.
   */
  private arrayHome(device: number): ArrayHome {
    const now = Date.now();
    const homes = (this.arrayHomes ??= new Array<ArrayHome>(this.memory.deviceCount));
    const current = homes[device];
    if (current !== undefined && !arrayHomeOutgrown(current, now, this.arrays.lastSerialGiven)) return current;
    return (homes[device] = new LeaseArrayHome(this, this.memory, device, now, this.arrays.lastSerialGiven));
  }

  /**
   * Where a new array goes: the named workspace, else the lease's current one (none while scoped out),
   * else nowhere (detached). Empty arrays are never attached (a workspace holds no zero-byte spans).
   */
  private targetWorkspace(workspaceId: string, byteSize: number): Workspace | undefined {
    const workspace = workspaceId !== '' ? this.workspaces.get(workspaceId) : (this.workspaceRegistry?.current ?? undefined);
    return byteSize === 0 ? undefined : workspace;
  }

  private createMaybeWaiting(params: AllocateParams, byteSize: number, placement: PlacementName, shape: number[], workspace?: Workspace): Promise<TensorArray> {
    const wait = params.waitForMemory;
    if (workspace) {
      // Only device memory is waited for: a HOST_ONLY or MMAP workspace's spills are host memory.
      return wait && workspace.primaryKind === 'DEVICE' ? this.createAttachedWaiting(params, byteSize, placement, shape, workspace, wait) : this.create(params, byteSize, placement, shape, workspace);
    }
    if (!wait || placement !== 'PLACEMENT_DEVICE') return this.create(params, byteSize, placement, shape);
    const deviceOptions = TensorArray.deviceOptions(this.memory, params.exportable ?? false);
    this.refuseOverQuota(params.device, byteSize, deviceOptions);
    const footprint = this.memory.deviceFootprint(params.device, byteSize, deviceOptions);
    return this.waitInQueue(this.memory.waitQueue(params.device), (retry) => this.create(params, byteSize, placement, shape, undefined, retry), wait, byteSize, undefined, footprint);
  }

  /**
   * Quota refusals never wait: a wait_for_memory request that its tenant's max_arrays or device quota
   * refuses now is refused now (in the order create checks them), not once the tenant's requests queued
   * ahead of it, which hold its turn, are served or give up. Nothing is held.
   */
  private refuseOverQuota(device: number, byteSize: number, deviceOptions: AllocateOptions | undefined): void {
    this.memory.tenants.reserveArray(this.tenant)();
    this.memory.checkDeviceQuota(device, this.tenant, byteSize, deviceOptions);
  }

  /**
   * wait_for_memory into a (device) workspace. A request that fits the workspace's buffer takes no pool
   * memory and is served at once; one that needs a buffer of its own (a spill, a pinned block: the
   * first cycle of a learning workspace, a cycle past its size) waits in the device's queue as a
   * detached request does, taking its turn behind requests already waiting. A refused try changes
   * nothing in the workspace. The request belongs to the cycle it was made in: when the workspace
   * moves on meanwhile (its scope left or entered again, or destroyed, by another call), the wait ends
   * at once with FAILED_PRECONDITION / ARRAY_OUT_OF_SCOPE rather than putting the array in a cycle
   * that it was not asked for (where it would be out of scope, and counted in that cycle's learning).
   */
  private async createAttachedWaiting(
    params: AllocateParams,
    byteSize: number,
    placement: PlacementName,
    shape: number[],
    workspace: Workspace,
    wait: NonNullable<AllocateParams['waitForMemory']>,
  ): Promise<TensorArray> {
    const cycle = workspaceCycle(workspace);
    const queue = this.memory.waitQueue(workspace.config.device);
    if (queue.size > 0) {
      // Others wait for this device: go ahead only without taking pool memory.
      const behindOthers: WorkspaceBufferOptions = {
        beforeTake: (request) => {
          if (request.location !== 'DEVICE' || queue.size === 0) return;
          // Quota refusals never wait (see refuseOverQuota): a buffer over the quota is refused before it queues.
          this.memory.checkDeviceQuota(request.device, this.tenant, request.bytes);
          throw QUEUE_TURN;
        },
      };
      try {
        return await this.create(params, byteSize, placement, shape, workspace, false, this.eagerMirror, behindOthers);
      } catch (error) {
        if (error !== QUEUE_TURN) throw error;
      }
    }
    return this.waitInQueue(
      queue,
      (retry) => {
        this.checkSameCycle(workspace, cycle);
        return this.create(params, byteSize, placement, shape, workspace, retry, this.eagerMirror, retry ? RETRY_BUFFERS : undefined);
      },
      wait,
      byteSize,
      (handle) => (this.workspaceWaits ??= new Map()).set(handle, { workspace, cycle }),
    );
  }

  /** Refuses a waiting allocation whose workspace has moved on since it was asked for (see createAttachedWaiting). */
  private checkSameCycle(workspace: Workspace, cycle: string): void {
    if (workspaceCycle(workspace) === cycle) return;
    const info = workspace.info();
    const what = workspace.isDestroyed ? 'was destroyed' : info.scopeActive ? 'entered a new cycle' : 'left its scope';
    throw new TensormemError(
      'FAILED_PRECONDITION',
      'ARRAY_OUT_OF_SCOPE',
      `Workspace "${workspace.name}" ${what} while this allocation waited for memory: its array would be out of scope; allocate again in the current cycle`,
      { workspace_id: workspace.workspaceId, workspace_name: workspace.name },
    );
  }

  /** Waiting allocations whose workspace moved on end now (a workspace operation just ran), not at the next free. */
  private endMovedOnWaits(): void {
    for (const [handle, { workspace, cycle }] of this.workspaceWaits ?? []) {
      try {
        this.checkSameCycle(workspace, cycle);
      } catch (error) {
        handle.cancel(error);
      }
    }
  }

  /** Runs `attempt` through the device's wait queue (wait_for_memory): cancelled with the call, the lease, or (onQueued) more. */
  private waitInQueue(
    queue: MemoryWaitQueue,
    attempt: (retry: boolean) => Promise<TensorArray>,
    wait: NonNullable<AllocateParams['waitForMemory']>,
    byteSize: number,
    onQueued?: (handle: WaitHandle) => void,
    /** What the request takes of the pool's cap (MemoryWaitQueue.run); byteSize when unknown (a workspace's buffer). */
    footprintBytes = byteSize,
  ): Promise<TensorArray> {
    let handle: WaitHandle | undefined;
    const waiting = queue.run(
      this.tenant,
      (retry) => {
        // Past its TTL the lease's token answers LEASE_EXPIRED (expired) already and the sweep is about to
        // free it: a waiter of it is not served (memory that others wait for, an array no call can reach)
        // but fails as its token does.
        if (this.isExpired()) throw leaseClosedError(this.leaseId, 'expired');
        return attempt(retry);
      },
      (late) => {
        if (this.arrays.delete(late.arrayId)) {
          if (late.workspace) this.attached?.get(late.workspace)?.delete(late);
          late.release();
        }
      },
      wait.waitMs,
      (queued) => {
        // Queued after the lease closed (its first attempt was refused meanwhile): fail at once.
        if (this.closed) return queued.cancel(this.closedError());
        handle = queued;
        (this.pendingWaits ??= new Set()).add(queued);
        onQueued?.(queued);
        wait.onHandle?.(queued);
      },
      byteSize,
      footprintBytes,
    );
    const settled = () => {
      if (handle) {
        this.pendingWaits?.delete(handle);
        this.workspaceWaits?.delete(handle);
      }
    };
    waiting.then(settled, settled);
    return waiting;
  }

  /**
   * `retry`: a wait_for_memory request tried again (its refusals are not counted again, AllocateOptions.retry).
   * `eagerMirror`: whether a detached device array gets its host mirror now (--mirror eager) or on first host access.
   */
  private async create(
    params: AllocateParams,
    byteSize: number,
    placement: PlacementName,
    shape: number[],
    workspace?: Workspace,
    retry = false,
    eagerMirror = this.eagerMirror,
    /** An attached array: what its workspace's buffers are asked for (wait_for_memory). */
    buffers?: WorkspaceBufferOptions,
  ): Promise<TensorArray> {
    // Every array costs the daemon heap, whatever its bytes: refused while that heap is nearly full
    // (after the request's own checks, so that a request that could never succeed says why).
    if (workspace) {
      TensorArray.checkAttachable(placement, workspace);
      checkScopeOpen(workspace);
    }
    // Held until the array is in `arrays` (counted there) or failed: allocations made at the same time
    // count against max_arrays together.
    const reserved = this.memory.tenants.reserveArray(this.tenant);
    try {
      this.memory.checkHeap(HEAP_COST.array + 2 * (params.label.length + params.requestId.length), this.tenant);
      const arrayId = newArrayId();
      // An attached array lives on its workspace's device.
      const device = workspace ? workspace.config.device : params.device;
      const home = this.arrayHome(device);
      const init = { arrayId, leaseId: this.leaseId, tenant: this.tenant, home, dataType: params.dataType as DataTypeName, shape, byteSize, placement, device, label: params.label };
      const array = workspace
        ? await TensorArray.makeAttached(init, this.memory, this.workspaces, workspace, { zero: params.zero, buffers })
        : // --scrub: a detached array's memory comes from the pools, which reuse what other leases freed.
          await TensorArray.make(init, this.memory, { zero: params.zero || (this.memory.scrubs && !params.overwritten), eagerMirror, exportable: params.exportable, retry });
      if (this.closed) {
        // The lease ended while the array was being zeroed: give the memory straight back.
        array.release();
        this.ensureOpen();
      }
      reserved();
      this.arrays.set(arrayId, array);
      if (params.overwritten) (this.filling ??= new Set()).add(arrayId);
      if (workspace) {
        this.attached ??= new Map();
        let set = this.attached.get(workspace);
        if (!set) this.attached.set(workspace, (set = new Set()));
        set.add(array);
        // The workspace moved on (a new cycle, or destroyed) while the array was being zeroed: retire it
        // now, as that workspace operation would have; a destroyed workspace sees no later one.
        const validity = array.attachmentValidity;
        if (workspace.isDestroyed || validity === 'outdated' || validity === 'released' || validity === 'overwritten') this.retireOutOfScope(workspace);
      }
      return array;
    } finally {
      reserved();
    }
  }

  /** NOT_FOUND for ids of other leases as for ids that never existed. */
  getArray(arrayId: unknown): TensorArray {
    this.ensureOpen();
    if (typeof arrayId !== 'string' || arrayId === '') throw invalidArgument('array_id', 'an array id', arrayId);
    const array = this.arrays.get(arrayId) ?? this.retired?.get(arrayId);
    if (!array || this.filling?.has(arrayId)) throw notFound('array', arrayId);
    return array;
  }

  /**
   * A page of the arrays ListArrays shows (every usable one, not a DuplicateArray copy still being
   * filled): the first `pageSize` (0: all) whose serialInLease is above `afterSerial`,
   * in the order they joined the lease; `nextAfterSerial` where more follow; `total` counts every page.
   * With `budget`, a page of a given size also ends before the array that would take the sum of
   * `budget.bytesOf` past `budget.maxBytes` (never before its first array).
   */
  arrayPage(afterSerial: number, pageSize: number, budget?: { bytesOf(array: TensorArray): number; maxBytes: number }): { arrays: TensorArray[]; nextAfterSerial?: number; total: number } {
    const arrays: TensorArray[] = [];
    let total = this.arrays.size;
    for (const arrayId of this.filling ?? []) if (this.arrays.has(arrayId)) total--;
    let bytes = 0;
    let iterator: Iterator<TensorArray> = this.arrays.values();
    let array: TensorArray | undefined;
    const cursor = afterSerial > 0 ? this.pageCursors?.get(afterSerial) : undefined;
    if (cursor !== undefined) {
      this.pageCursors!.delete(afterSerial);
      iterator = cursor.iterator;
      // Unless it left the lease since, or moved to the end (renew: the iterator comes to it there).
      if (this.arrays.get(cursor.next.arrayId) === cursor.next && cursor.next.serialInLease === cursor.nextSerial) array = cursor.next;
    }
    for (array ??= nextOf(iterator); array !== undefined; array = nextOf(iterator)) {
      if (array.serialInLease <= afterSerial || this.filling?.has(array.arrayId)) continue;
      if (pageSize > 0) {
        if (budget) bytes += budget.bytesOf(array);
        if (arrays.length === pageSize || (budget && arrays.length > 0 && bytes > budget.maxBytes)) {
          const nextAfterSerial = arrays[arrays.length - 1].serialInLease;
          this.pageCursors ??= new Map();
          if (this.pageCursors.size >= Lease.MAX_PAGE_CURSORS) this.pageCursors.delete(this.pageCursors.keys().next().value!);
          this.pageCursors.set(nextAfterSerial, { iterator, next: array, nextSerial: array.serialInLease });
          return { arrays, nextAfterSerial, total };
        }
      }
      arrays.push(array);
    }
    return { arrays, total };
  }

  freeArray(arrayId: unknown): number {
    const array = this.getArray(arrayId);
    this.arrays.delete(array.arrayId);
    this.retired?.delete(array.arrayId);
    if (array.workspace) this.attached?.get(array.workspace)?.delete(array);
    this.forgetRequest(array.arrayId);
    return array.release();
  }

  /** The array left the lease for good: a retry of the request_id that made it allocates anew. */
  private forgetRequest(arrayId: string): void {
    const requestOfArray = this.requestOfArray;
    const requestId = requestOfArray?.get(arrayId);
    if (requestId === undefined) return;
    requestOfArray!.delete(arrayId);
    if (this.requests?.get(requestId)?.arrayId === arrayId) this.requests!.delete(requestId);
  }

  /** How many request_ids the lease remembers (live or in-flight allocations made with one). */
  get requestIdCount(): number {
    return this.requests?.size ?? 0;
  }

  /**
   * Bounded retention: drops from `arrays` the arrays attached to `workspace` that can never be used
   * again — of an older generation (outdated), whose memory went back (released) or went to a later
   * array of a circular workspace's ring (overwritten), or of a destroyed workspace — keeping their ids
   * among the last RETIRED_ARRAYS_KEPT retired ones, which still answer ND4J's message. Arrays of the
   * current generation stay (leaked ones answer until the next cycle); so do circular workspaces'
   * arrays until the ring comes round over them or their memory is given back (ND4J never outdates them).
   * Called after every workspace operation.
   */
  retireOutOfScope(workspace: Workspace): void {
    if (this.workspaceWaits !== undefined && this.workspaceWaits.size > 0) this.endMovedOnWaits();
    const attached = this.attached;
    const set = attached?.get(workspace);
    if (!attached || !set) return;
    const destroyed = this.workspaces.find(workspace.workspaceId) !== workspace;
    for (const array of set) {
      const validity = destroyed ? 'released' : array.attachmentValidity;
      if (validity !== 'outdated' && validity !== 'released' && validity !== 'overwritten') continue;
      set.delete(array);
      this.arrays.delete(array.arrayId);
      (this.retired ??= new Map()).set(array.arrayId, array);
      if (this.retired.size > RETIRED_ARRAYS_KEPT) {
        const oldest = this.retired.keys().next().value!;
        this.retired.delete(oldest);
        this.forgetRequest(oldest);
      }
    }
    if (set.size === 0) attached.delete(workspace);
  }

  /** How many retired array ids the lease remembers (≤ RETIRED_ARRAYS_KEPT). */
  get retiredCount(): number {
    return this.retired?.size ?? 0;
  }

  /** The lease's cuDNN scratch on `device`, unless it has none (or the client freed it). */
  cudnnScratchOf(device: number): TensorArray | undefined {
    const scratch = this.cudnnScratch?.get(device);
    if (scratch?.isFreed) this.cudnnScratch!.delete(device);
    return scratch?.isFreed ? undefined : scratch;
  }

  /**
   * What a scratch on `device` may take: the pool cap's headroom (less other tenants' unused
   * guarantees, which the allocation may not take either) and the tenant's device quota headroom,
   * whichever is smaller, plus the scratch held now when growing gives it back first: not while a
   * transfer of it is in flight (its memory comes back only when that ends, so the new one must fit
   * beside it, as acquireCudnnScratch checks). DESIGN.md §4.
   */
  scratchBudget(device: number): ScratchBudget {
    this.memory.checkDevice(device);
    const pool = this.memory.deviceReports()[device];
    const usage = this.memory.tenants.usage(this.tenant);
    const current = this.cudnnScratchOf(device);
    const inFlight = current?.copying === true;
    const held = current && !inFlight ? current.deviceHeldBytes : 0;
    const reserved = this.memory.othersUnusedGuaranteeBytes(device, this.tenant);
    let headroom = Math.max(0, pool.maxBytes - reserved - pool.usedBytes);
    let detail = `pool cap (maxbytes) ${formatBytes(pool.maxBytes)}, used ${formatBytes(pool.usedBytes)}`;
    if (reserved > 0) detail += `, other tenants' unused guarantees ${formatBytes(reserved)}`;
    const givenBack: Record<string, string> = held > 0 ? { given_back_bytes: String(held) } : {};
    const facts: Record<string, string> = { device: String(device), cap_bytes: String(pool.maxBytes - reserved), used_bytes: String(pool.usedBytes), ...givenBack };
    let quota: ScratchBudget['quota'];
    if (usage.deviceQuotaBytes > 0) {
      const quotaHeadroom = Math.max(0, usage.deviceQuotaBytes - usage.deviceBytes[device]);
      headroom = Math.min(headroom, quotaHeadroom);
      detail += `; tenant "${this.tenant}" quota ${formatBytes(usage.deviceQuotaBytes)}, used ${formatBytes(usage.deviceBytes[device])}`;
      Object.assign(facts, { tenant: this.tenant, tenant_quota_bytes: String(usage.deviceQuotaBytes), tenant_used_bytes: String(usage.deviceBytes[device]) });
      quota = {
        bytes: quotaHeadroom + held,
        facts: { device: String(device), tenant: this.tenant, quota_bytes: String(usage.deviceQuotaBytes), used_bytes: String(usage.deviceBytes[device]), ...givenBack },
      };
    }
    detail += inFlight ? `; cuDNN scratch held ${formatBytes(current.deviceHeldBytes)}, not given back (a transfer of it is in flight)` : `; cuDNN scratch held ${formatBytes(held)}`;
    return { bytes: headroom + held, detail, facts, quota, alignedSize: (bytes) => (bytes === 0 ? 0 : this.memory.deviceFootprint(device, bytes)) };
  }

  /**
   * DL4J's grow-only cuDNN workspace: the scratch on `device` when it holds at least `bytes`, else a
   * larger one replacing it, taken only once it is known to fit the budget (the old one is given back
   * first, so growth never needs both). Returns the scratch (undefined when none is needed or held)
   * and whether it grew.
   *
   * `size` is the bytes, or what sizes them when this call's turn comes (AcquireCudnnWorkspace's plan,
   * whose PREFER_FASTEST choice reads scratchBudget): sized earlier, a call arriving while another
   * one's scratch is being made would see that scratch's bytes as used and none of them as held.
   */
  async acquireCudnnScratch(device: number, size: number | (() => number)): Promise<{ scratch?: TensorArray; grew: boolean }> {
    this.ensureOpen();
    const sized = typeof size === 'number' ? () => size : size;
    // One at a time per device: making a scratch awaits (--scrub zeroes it off the event loop), and a
    // second call meanwhile would see the old scratch (or none) and make one more, left in the lease.
    const previous = this.scratchAcquiring?.get(device);
    let next: () => Promise<{ scratch?: TensorArray; grew: boolean }>;
    if (previous === undefined) {
      const bytes = sized();
      const current = this.cudnnScratchOf(device);
      if (bytes === 0 || (current && current.byteSize >= bytes)) return { scratch: current, grew: false };
      next = () => this.acquireCudnnScratchNow(device, bytes);
    } else {
      next = () => this.acquireCudnnScratchNow(device, sized());
    }
    const acquired = (previous ?? Promise.resolve()).then(next);
    const settled = acquired.then(
      () => undefined,
      () => undefined,
    );
    (this.scratchAcquiring ??= new Map()).set(device, settled);
    void settled.then(() => {
      if (this.scratchAcquiring?.get(device) === settled) this.scratchAcquiring!.delete(device);
    });
    return acquired;
  }

  private async acquireCudnnScratchNow(device: number, bytes: number): Promise<{ scratch?: TensorArray; grew: boolean }> {
    this.ensureOpen();
    const current = this.cudnnScratchOf(device);
    if (bytes === 0 || (current && current.byteSize >= bytes)) return { scratch: current, grew: false };
    // A scratch with a copy in flight (the client reading it) gives its memory back only when the copy
    // ends: the new one must then fit beside it (the budget counts it as given back only otherwise),
    // and the old one is freed once the new one is had.
    const budget = this.scratchBudget(device);
    const givesBack = current !== undefined && !current.copying;
    const givenBackBytes = givesBack ? current.deviceHeldBytes : 0;
    if (budget.alignedSize(bytes) > budget.bytes) throw this.scratchRefusal(device, bytes, budget.alignedSize(bytes), givenBackBytes);
    // The daemon's heap, before the old scratch goes: refused there, the lease keeps it (the new one's
    // own check, and the old size's remaking after a refusal, would be refused as well).
    this.memory.checkHeap(HEAP_COST.array, this.tenant);
    if (givesBack) this.freeArray(current.arrayId);
    try {
      const scratch = await this.createScratch(device, bytes);
      // Unless the client freed the old one meanwhile (it is then gone from the lease already).
      if (current && !givesBack && !current.isFreed) this.freeArray(current.arrayId);
      return { scratch, grew: current !== undefined };
    } catch (error) {
      // The pool could not place it after all (fragmentation): keep the lease's old scratch size. Not
      // for a lease closed meanwhile: that would take (and zero) memory only to give it back.
      if (givesBack && !this.closed) await this.createScratch(device, current.byteSize).catch(() => undefined);
      throw error;
    }
  }

  /**
   * The scratch is device memory for cuDNN: it gets no host mirror until the client reads it, also under
   * --mirror eager (a mirror would take host memory that scratchBudget does not count, and refuse the scratch
   * with HOST_OUT_OF_MEMORY after the old one was given back).
   */
  private async createScratch(device: number, bytes: number): Promise<TensorArray> {
    const params = { dataType: 'DATA_TYPE_UINT8', shape: [bytes], placement: 'PLACEMENT_DEVICE', device, workspaceId: '', zero: false, label: CUDNN_SCRATCH_LABEL, requestId: '' };
    const scratch = await this.create(params, bytes, 'PLACEMENT_DEVICE', [bytes], undefined, false, false);
    (this.cudnnScratch ??= new Map()).set(device, scratch);
    return scratch;
  }

  /**
   * The error a scratch that does not fit gets: the tenant's quota when that is what refuses, else the
   * pool cap (less others' unused guarantees, as the guarantee policy says it). The used bytes are those
   * GetMemoryInfo shows now, the old scratch given back first (`givenBackBytes`) said apart: the message
   * said "used 1 MiB" of a tenant GetMemoryInfo showed at 8 MiB, its 7 MiB scratch included.
   */
  private scratchRefusal(device: number, bytes: number, alignedBytes: number, givenBackBytes: number): TensormemError {
    const pool = this.memory.deviceReports()[device];
    const usage = this.memory.tenants.usage(this.tenant);
    const tenantUsed = usage.deviceBytes[device];
    const givenBack = { bytes: givenBackBytes, what: 'the cuDNN scratch it replaces' };
    if (usage.deviceQuotaBytes > 0 && tenantUsed - givenBackBytes + alignedBytes > usage.deviceQuotaBytes) {
      return new QuotaExceededError(this.tenant, 'DEVICE', device, bytes, usage.deviceQuotaBytes, tenantUsed, alignedBytes, givenBack);
    }
    const reserved = this.memory.othersUnusedGuaranteeBytes(device, this.tenant);
    // The pool (its cap, less others' guarantees) would have refused it: counted as the pool's refusal.
    this.memory.countDeviceRefusal(device);
    return new OutOfMemoryError({
      memory: 'DEVICE',
      device,
      requestedBytes: bytes,
      capName: reserved > 0 ? `pool cap (maxbytes) less other tenants' unused guarantees (${formatIec(reserved)})` : 'pool cap (maxbytes)',
      capBytes: pool.maxBytes - reserved,
      usedBytes: pool.usedBytes,
      largestFreeBlockBytes: pool.largestFreeBlockBytes,
      tenant: usage.deviceQuotaBytes > 0 ? { name: this.tenant, quotaBytes: usage.deviceQuotaBytes, usedBytes: tenantUsed } : undefined,
      givenBack,
    });
  }

  /**
   * ND4J's dup / leverageTo / detach: a copy in the named workspace, else the current one, or outside
   * every workspace when `detached`. The source must still be usable (ARRAY_OUT_OF_SCOPE otherwise).
   * A device refusal says how much of the pool this lease's cuDNN scratch holds, as allocateArray's does.
   */
  async duplicateArray(arrayId: unknown, placementName: unknown, workspaceId: string, label: string, detached = false): Promise<TensorArray> {
    try {
      return await this.duplicateArrayNow(arrayId, placementName, workspaceId, label, detached);
    } catch (error) {
      // The copy is the call's only device allocation: a device refusal is the copy's, on the source's device.
      throw this.withScratchOf(error);
    }
  }

  private async duplicateArrayNow(arrayId: unknown, placementName: unknown, workspaceId: string, label: string, detached: boolean): Promise<TensorArray> {
    if (detached && workspaceId !== '') throw invalidArgument('workspace_id', 'empty when detached is set (a detached copy is outside every workspace)', workspaceId);
    const source = this.getArray(arrayId);
    source.assertUsable('Cannot duplicate array');
    const workspace = detached ? undefined : this.targetWorkspace(workspaceId, source.byteSize);
    // PLACEMENT_UNSPECIFIED: ND4J's dup / leverageTo allocate the copy in the target workspace whatever
    // the source is, so a copy into a workspace takes the workspace's placement (a HOST_ONLY array
    // duplicated into a FULL workspace becomes a device array there); outside workspaces, the source's.
    const placement = placementName !== 'PLACEMENT_UNSPECIFIED' ? parsePlacement(placementName) : workspace ? TensorArray.placementIn(workspace) : source.placement;
    const copy = await this.create(
      { dataType: source.dataType, shape: source.shape, placement, device: source.device, workspaceId: '', zero: false, label: label || source.label, requestId: '', overwritten: true },
      source.byteSize,
      placement,
      source.shape,
      workspace,
    );
    try {
      await source.copyInto(copy);
    } catch (error) {
      this.filling?.delete(copy.arrayId);
      if (!this.closed) this.freeArray(copy.arrayId);
      throw this.closed ? this.closedError() : error;
    }
    this.filling?.delete(copy.arrayId);
    // Listable from now on: it takes its place in ListArrays' order now, not when its copy began.
    this.arrays.renew(copy.arrayId);
    // The lease ended during the copy, which freed the copy with it: answer as AllocateArray does.
    this.ensureOpen();
    return copy;
  }

  /** Device bytes the lease holds: detached arrays (the cuDNN scratch included) and workspace buffers. */
  deviceBytes(): number {
    return this.workspaceHeldBytes().deviceBytes + this.arrays.deviceHeldBytes;
  }

  /** Host bytes the lease holds: mirrors, HOST_ONLY arrays, and workspace host buffers (mapped files are not counted). */
  hostBytes(): number {
    return this.workspaceHeldBytes().hostBytes + this.arrays.hostHeldBytes;
  }

  /** Bytes of the files the lease's MMAP workspaces map. */
  mmapBytes(): number {
    return this.workspaceHeldBytes().mmapBytes;
  }

  /**
   * Frees every array and destroys every workspace; allocations still waiting for memory fail at once
   * with the closed-lease error and leave their queues. Returns the bytes given back.
   */
  close(reason?: LeaseCloseReason): number {
    if (this.closed) return 0;
    this.closed = true;
    this.closeReason = reason;
    this.workspaceBacking?.close(() => this.closedError());
    const waits = [...(this.pendingWaits ?? [])];
    this.pendingWaits?.clear();
    this.workspaceWaits?.clear();
    for (const wait of waits) wait.cancel(this.closedError());
    // Out of the map before they are released: each release tells the map of the bytes it gave back
    // (heldChanged), which looked the array up there to count them, for a map about to be emptied
    // anyway (half of a close's time: a lease of 100,000 arrays, 170 of 320 ms profiled).
    const arrays = [...this.arrays.values()];
    this.arrays.clear();
    let freed = 0;
    for (const array of arrays) freed += array.release();
    freed += this.workspaceRegistry?.destroyAll() ?? 0;
    this.attached?.clear();
    this.retired?.clear();
    this.cudnnScratch?.clear();
    this.filling?.clear();
    this.pageCursors?.clear();
    this.requests?.clear();
    this.requestOfArray?.clear();
    const listeners = [...(this.closeListeners ?? [])];
    this.closeListeners?.clear();
    for (const listener of listeners) listener();
    return freed;
  }
}

function nextOf<T>(iterator: Iterator<T>): T | undefined {
  const step = iterator.next();
  return step.done ? undefined : step.value;
}
