/**
 * The client's cache of shared-memory mappings (ExportArray on the same host): each object is mapped
 * once per mode (read-only, read-write) and reused, because the first touch of a large mapping costs
 * page faults (DESIGN.md §6: about 150 ms for 256 MiB) and later reads run at memcpy speed.
 *
 * release() unmaps now; the ArrayBuffer is detached, so views handed out before read as empty instead
 * of touching unmapped memory.
 */
import { loadAddon } from '../native/addon';

export class SharedMemoryMappings {
  private readonly mappings = new Map<string, ArrayBuffer>();

  private static key(name: string, writable: boolean): string {
    return `${writable ? 'rw' : 'ro'}:${name}`;
  }

  /** The mapping of `name` in that mode, made on first use. */
  map(name: string, writable: boolean): ArrayBuffer {
    const key = SharedMemoryMappings.key(name, writable);
    let mapping = this.mappings.get(key);
    if (!mapping) {
      mapping = loadAddon().mapSharedMemory(name, writable);
      this.mappings.set(key, mapping);
    }
    return mapping;
  }

  has(name: string): boolean {
    return this.mappings.has(SharedMemoryMappings.key(name, false)) || this.mappings.has(SharedMemoryMappings.key(name, true));
  }

  /** Unmaps both modes of `name`. */
  release(name: string): void {
    for (const writable of [false, true]) {
      const key = SharedMemoryMappings.key(name, writable);
      const mapping = this.mappings.get(key);
      if (!mapping) continue;
      this.mappings.delete(key);
      loadAddon().unmapSharedMemory(mapping);
    }
  }

  releaseAll(): void {
    for (const mapping of this.mappings.values()) loadAddon().unmapSharedMemory(mapping);
    this.mappings.clear();
  }

  get size(): number {
    return this.mappings.size;
  }
}
