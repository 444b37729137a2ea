/**
 * A lease's live arrays by id, counting every one added or removed into its tenant's total (the
 * tenants file's max_arrays): whichever path adds or removes an array (AllocateArray, DuplicateArray,
 * FreeArray, an attached array retired when its workspace moves on, the lease's close), the count
 * follows the map. Each array added gets the next serial (TensorArray.serialInLease), so the map's
 * order is the order of the serials, which ListArrays pages follow. It also sums the bytes its arrays
 * hold on each side (LeaseSummary's device_bytes and host_bytes), told of every change by the arrays'
 * home (heldChanged): adding them up per summary was O(arrays) (2.4 ms a lease of 100,000 arrays, for
 * every lease of a ListLeases page and of every status page tick).
 */
import type { TenantAccounts } from '../memory/tenant-accounts';
import type { TensorArray } from '../memory/tensor-array';

export class CountedArrayMap extends Map<string, TensorArray> {
  private lastSerial = 0;
  private deviceBytes = 0;
  private hostBytes = 0;

  /** Counts into `tenant`'s account of `tenants` (a closure that did so was 100 bytes more for every lease). */
  constructor(
    private readonly tenants: Pick<TenantAccounts, 'countArrays'>,
    private readonly tenant: string,
  ) {
    super();
  }

  private count(delta: number): void {
    this.tenants.countArrays(this.tenant, delta);
  }

  /** The serial the last array added was given (0: none yet). */
  get lastSerialGiven(): number {
    return this.lastSerial;
  }

  /** Σ deviceHeldBytes of the arrays in the map. */
  get deviceHeldBytes(): number {
    return this.deviceBytes;
  }

  /** Σ hostHeldBytes of the arrays in the map. */
  get hostHeldBytes(): number {
    return this.hostBytes;
  }

  /** `array`'s held bytes changed by these (ArrayHome.heldChanged): counted while it is the array in the map under its id. */
  held(array: TensorArray, deviceBytes: number, hostBytes: number): void {
    if (super.get(array.arrayId) !== array) return;
    this.deviceBytes += deviceBytes;
    this.hostBytes += hostBytes;
  }

  override set(arrayId: string, array: TensorArray): this {
    const previous = super.get(arrayId);
    const added = previous === undefined;
    if (added) array.serialInLease = ++this.lastSerial;
    else this.countHeld(previous, -1);
    super.set(arrayId, array);
    this.countHeld(array, 1);
    if (added) this.count(1);
    return this;
  }

  /**
   * Moves an array to the end of the order with the next serial, counting nothing: a DuplicateArray copy
   * that has just become listable, so that a ListArrays listing paged meanwhile (past the serial it was
   * given when its copy began) still comes to it in a later page.
   */
  renew(arrayId: string): void {
    const array = this.get(arrayId);
    if (array === undefined) return;
    super.delete(arrayId);
    array.serialInLease = ++this.lastSerial;
    super.set(arrayId, array);
  }

  override delete(arrayId: string): boolean {
    const array = super.get(arrayId);
    if (array === undefined) return false;
    this.countHeld(array, -1);
    super.delete(arrayId);
    this.count(-1);
    return true;
  }

  override clear(): void {
    const size = this.size;
    this.deviceBytes = 0;
    this.hostBytes = 0;
    super.clear();
    if (size > 0) this.count(-size);
  }

  private countHeld(array: TensorArray, sign: 1 | -1): void {
    this.deviceBytes += sign * array.deviceHeldBytes;
    this.hostBytes += sign * array.hostHeldBytes;
  }
}
