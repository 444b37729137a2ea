/**
 * A lease's live arrays by id, counting every one added or removed into its tenant's total (the
 * tenants file's max_arrays): whichever path adds or removes an array (AllocateArray, DuplicateArray,
 * FreeArray, an attached array retired when its workspace moves on, the lease's close), the count
 * follows the map. Each array added gets the next serial (TensorArray.serialInLease), so the map's
 * order is the order of the serials, which ListArrays pages follow.
 */
import type { TensorArray } from '../memory/tensor-array';

export class CountedArrayMap extends Map<string, TensorArray> {
  private lastSerial = 0;

  constructor(private readonly count: (delta: number) => void) {
    super();
  }

  override set(arrayId: string, array: TensorArray): this {
    const added = !this.has(arrayId);
    if (added) array.serialInLease = ++this.lastSerial;
    super.set(arrayId, array);
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
    const deleted = super.delete(arrayId);
    if (deleted) this.count(-1);
    return deleted;
  }

  override clear(): void {
    const size = this.size;
    super.clear();
    if (size > 0) this.count(-size);
  }
}
