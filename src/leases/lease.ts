/**
 * A lease: a client's claim on memory, and the owner of its arrays (ND4J's thread plays this role for
 * workspaces). Everything it holds is freed when it is closed or expires.
 */
import { randomBytes } from 'node:crypto';
import { TensormemError, invalidArgument, notFound } from '../errors';
import { byteSizeOf, DataTypeName } from '../memory/data-types';
import type { MemoryManager } from '../memory/memory-manager';
import { PlacementName, TensorArray } from '../memory/tensor-array';
import type { WaitHandle } from '../memory/memory-wait-queue';
import type { Workspace } from '../memory/workspace';
import { WorkspaceRegistry } from '../memory/workspace-registry';
import { PoolWorkspaceBacking } from '../memory/pool-workspace-backing';

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
}

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

export class Lease {
  readonly createdAt = new Date();
  expiresAtMs: number;
  closed = false;
  readonly arrays = new Map<string, TensorArray>();
  /** The lease's workspaces and scope stack (ND4J's per-thread workspace manager). */
  readonly workspaces: WorkspaceRegistry;
  /** request_id → the allocation it made (in flight or done), for idempotent retries. */
  private readonly requests = new Map<string, { key: string; array: Promise<TensorArray> }>();

  constructor(
    readonly leaseId: string,
    readonly tokenHash: string,
    readonly tenant: string,
    readonly clientName: string,
    readonly labels: Record<string, string>,
    public ttlMs: number,
    private readonly memory: MemoryManager,
    private readonly eagerMirror: boolean,
  ) {
    this.expiresAtMs = Date.now() + ttlMs;
    this.workspaces = new WorkspaceRegistry({ backing: new PoolWorkspaceBacking(memory, { leaseId, tenant }) });
  }

  renew(ttlMs = this.ttlMs): void {
    this.ttlMs = ttlMs;
    this.expiresAtMs = Date.now() + ttlMs;
  }

  isExpired(now = Date.now()): boolean {
    return now >= this.expiresAtMs;
  }

  private ensureOpen(): void {
    if (this.closed) throw new TensormemError('FAILED_PRECONDITION', 'LEASE_EXPIRED', `lease ${this.leaseId} is closed`);
  }

  /** Validates everything before taking any memory; all or nothing. */
  async allocateArray(params: AllocateParams): Promise<TensorArray> {
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
      const previous = this.requests.get(params.requestId);
      if (previous) {
        if (previous.key !== key) throw invalidArgument('request_id', 'a request_id not used for a different allocation on this lease', params.requestId);
        const array = await previous.array;
        if (!array.isFreed) return array;
      }
      const pending = this.createMaybeWaiting(params, byteSize, placement, shape, workspace);
      this.requests.set(params.requestId, { key, array: pending });
      pending.catch(() => {
        if (this.requests.get(params.requestId)?.array === pending) this.requests.delete(params.requestId);
      });
      return pending;
    }
    return this.createMaybeWaiting(params, byteSize, placement, shape, workspace);
  }

  /**
   * Where a new array goes: the named workspace, else the lease's current one (none while scoped out),
   * else nowhere (detached). Empty arrays are never attached (a workspace holds no zero-byte spans).
   */
  private targetWorkspace(workspaceId: string, byteSize: number): Workspace | undefined {
    const workspace = workspaceId !== '' ? this.workspaces.get(workspaceId) : (this.workspaces.current ?? undefined);
    return byteSize === 0 ? undefined : workspace;
  }

  private createMaybeWaiting(params: AllocateParams, byteSize: number, placement: PlacementName, shape: number[], workspace?: Workspace): Promise<TensorArray> {
    if (workspace) return this.create(params, byteSize, placement, shape, workspace);
    const wait = params.waitForMemory;
    if (!wait || placement !== 'PLACEMENT_DEVICE') return this.create(params, byteSize, placement, shape);
    return this.memory.waitQueue(params.device).run(
      this.tenant,
      () => this.create(params, byteSize, placement, shape),
      (late) => {
        if (this.arrays.delete(late.arrayId)) late.release();
      },
      wait.waitMs,
      wait.onHandle,
    );
  }

  private async create(params: AllocateParams, byteSize: number, placement: PlacementName, shape: number[], workspace?: Workspace): Promise<TensorArray> {
    const arrayId = `arr-${randomBytes(12).toString('hex')}`;
    const init = { arrayId, leaseId: this.leaseId, tenant: this.tenant, dataType: params.dataType as DataTypeName, shape, byteSize, placement, device: params.device, label: params.label };
    const array = workspace
      ? await TensorArray.createAttached(init, this.memory, this.workspaces, workspace, { zero: params.zero })
      : await TensorArray.create(init, this.memory, { zero: params.zero, eagerMirror: this.eagerMirror, exportable: params.exportable });
    if (this.closed) {
      // The lease ended while the array was being zeroed: give the memory straight back.
      array.release();
      this.ensureOpen();
    }
    this.arrays.set(arrayId, array);
    return array;
  }

  /** NOT_FOUND for ids of other leases as for ids that never existed. */
  getArray(arrayId: unknown): TensorArray {
    this.ensureOpen();
    if (typeof arrayId !== 'string' || arrayId === '') throw invalidArgument('array_id', 'an array id', arrayId);
    const array = this.arrays.get(arrayId);
    if (!array) throw notFound('array', arrayId);
    return array;
  }

  freeArray(arrayId: unknown): number {
    const array = this.getArray(arrayId);
    this.arrays.delete(array.arrayId);
    return array.release();
  }

  /**
   * ND4J's dup / leverageTo / detach: a copy in the named workspace, else the current one, or outside
   * every workspace when `detached`. The source must still be usable (ARRAY_OUT_OF_SCOPE otherwise).
   */
  async duplicateArray(arrayId: unknown, placementName: unknown, workspaceId: string, label: string, detached = false): Promise<TensorArray> {
    const source = this.getArray(arrayId);
    source.assertUsable('Cannot duplicate array');
    const workspace = detached ? undefined : this.targetWorkspace(workspaceId, source.byteSize);
    const placement = placementName === 'PLACEMENT_UNSPECIFIED' ? source.placement : parsePlacement(placementName);
    const copy = await this.create(
      { dataType: source.init.dataType, shape: source.init.shape, placement, device: source.init.device, workspaceId: '', zero: false, label: label || source.init.label, requestId: '' },
      source.byteSize,
      placement,
      source.init.shape,
      workspace,
    );
    try {
      await source.copyInto(copy);
    } catch (error) {
      this.freeArray(copy.arrayId);
      throw error;
    }
    return copy;
  }

  deviceBytes(): number {
    let bytes = 0;
    for (const array of this.arrays.values()) bytes += array.deviceHeldBytes;
    return bytes;
  }

  hostBytes(): number {
    let bytes = 0;
    for (const array of this.arrays.values()) bytes += array.hostHeldBytes;
    return bytes;
  }

  /** Frees every array and destroys every workspace; returns the bytes given back. */
  close(): number {
    if (this.closed) return 0;
    this.closed = true;
    let freed = 0;
    for (const array of this.arrays.values()) freed += array.release();
    freed += this.workspaces.destroyAll();
    this.arrays.clear();
    this.requests.clear();
    return freed;
  }
}
