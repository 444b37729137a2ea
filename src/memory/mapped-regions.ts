/** --max-mapped-regions: the mappings tenants make one at a time, counted against the kernel's vm.max_map_count. */
import { MappingLimitError } from '../errors';
import { formatBytes } from '../units';

/** A dedicated chunk of `bytes` as a refusal names it (MAPPING_LIMIT, a tenant's max_mapped_regions). */
export function dedicatedRegionOf(bytes: number): string {
  return `a region of its own for an exportable array (${formatBytes(bytes)})`;
}

/**
 * The memory mappings the tenants make one at a time: a dedicated chunk (an exportable array's region,
 * 4 KiB and up) and an MMAP workspace's mapping. Each is a mapping of the daemon's process, and the
 * kernel allows a process vm.max_map_count of them (65530 by default): a tenant making 65,000 one-byte
 * exportable arrays (260 MiB of its host quota) or MMAP workspaces of one small file (charged once) took
 * them all, and the next mapping anyone needed (a pool chunk, V8's heap) failed: the daemon died of
 * std::bad_alloc with every tenant's leases. Past the cap they are refused instead (MAPPING_LIMIT).
 */
export class MappedRegions {
  private count = 0;
  private readonly dedicated = new Set<number>();

  constructor(readonly max: number) {}

  /** MAPPING_LIMIT when one more would pass the cap; `what` names it for the message. */
  check(what: string): void {
    if (this.max > 0 && this.count >= this.max) throw new MappingLimitError(what, this.count, this.max);
  }

  addDedicated(handle: number): void {
    this.dedicated.add(handle);
    this.count++;
  }

  /** Mappings held now, dedicated chunks and MMAP workspaces' together. */
  get held(): number {
    return this.count;
  }

  /** A chunk given back: counted down when it was a dedicated one. */
  freed(handle: number): void {
    if (this.dedicated.delete(handle)) this.count--;
  }

  /** An MMAP workspace's mapping of its file, made (+1) or unmapped (-1). */
  addFileMapping(delta: 1 | -1): void {
    this.count += delta;
  }
}
