/**
 * The client's cache of shared-memory mappings (ExportArray on the same host): each object is mapped
 * once per mode (read-only, read-write) and reused, because the first touch of a large mapping costs
 * page faults (DESIGN.md §6: about 150 ms for 256 MiB) and later reads run at memcpy speed.
 *
 * release() unmaps now; the ArrayBuffer is detached, so views handed out before read as empty instead
 * of touching unmapped memory. A mapping that a transfer of this client is sending from (hold()) is
 * unmapped when that transfer ends instead. A mapping whose ArrayBuffer a caller moved with
 * ArrayBuffer.prototype.transfer() (Node 22+) is the new ArrayBuffer's: the addon unmaps it when that
 * one is garbage-collected, never under it, and map() maps the object again.
 */
import { loadAddon } from '../native/addon';

export class SharedMemoryMappings {
  private readonly mappings = new Map<string, ArrayBuffer>();
  /** The ArrayBuffers of `mappings`, for hold()'s look-up on every write. */
  private readonly mapped = new Set<ArrayBuffer>();
  /** Transfers sending from each mapping (hold()), and the mappings released meanwhile, unmapped when the last ends. */
  private readonly holds = new Map<ArrayBuffer, number>();
  private readonly releasedWhileHeld = new Set<ArrayBuffer>();

  private static key(name: string, writable: boolean): string {
    return `${writable ? 'rw' : 'ro'}:${name}`;
  }

  /** The mapping of `name` in that mode, made on first use. */
  map(name: string, writable: boolean): ArrayBuffer {
    const key = SharedMemoryMappings.key(name, writable);
    let mapping = this.mappings.get(key);
    if (mapping && mapping.byteLength === 0) {
      // Detached, and mappings are never empty: the caller moved it away (ArrayBuffer.prototype.transfer(),
      // Node 22+). The memory is that caller's ArrayBuffer's now, unmapped when it is collected.
      this.mappings.delete(key);
      this.mapped.delete(mapping);
      mapping = undefined;
    }
    if (!mapping) {
      mapping = loadAddon().mapSharedMemory(name, writable);
      this.mappings.set(key, mapping);
      this.mapped.add(mapping);
    }
    return mapping;
  }

  has(name: string): boolean {
    return this.mappings.has(SharedMemoryMappings.key(name, false)) || this.mappings.has(SharedMemoryMappings.key(name, true));
  }

  /**
   * Keeps `buffer`, when it is one of these mappings, mapped until the returned function is called:
   * write() sends from a view of it over a stream or a socket, piece by piece, and a free() or close()
   * meanwhile detached the buffer under the transfer: WriteArray ended early and reported the bytes
   * sent so far as written, a PUT stopped sending its body and waited for the daemon's stall timeout.
   * Undefined for any other buffer.
   */
  hold(buffer: ArrayBufferLike): (() => void) | undefined {
    const mapping = buffer as ArrayBuffer;
    if (!this.mapped.has(mapping) && !this.holds.has(mapping)) return undefined;
    this.holds.set(mapping, (this.holds.get(mapping) ?? 0) + 1);
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      const left = this.holds.get(mapping)! - 1;
      if (left > 0) {
        this.holds.set(mapping, left);
        return;
      }
      this.holds.delete(mapping);
      if (this.releasedWhileHeld.delete(mapping)) loadAddon().unmapSharedMemory(mapping);
    };
  }

  /** Unmaps both modes of `name` (a held mapping when its last transfer ends). */
  release(name: string): void {
    for (const writable of [false, true]) {
      const key = SharedMemoryMappings.key(name, writable);
      const mapping = this.mappings.get(key);
      if (!mapping) continue;
      this.mappings.delete(key);
      this.unmap(mapping);
    }
  }

  releaseAll(): void {
    for (const mapping of this.mappings.values()) this.unmap(mapping);
    this.mappings.clear();
  }

  private unmap(mapping: ArrayBuffer): void {
    this.mapped.delete(mapping);
    if (this.holds.has(mapping)) this.releasedWhileHeld.add(mapping);
    else loadAddon().unmapSharedMemory(mapping);
  }

  get size(): number {
    return this.mappings.size;
  }
}
