/**
 * The kernel's limit of memory mappings per process (vm.max_map_count, 65530 by default), which bounds
 * --max-mapped-regions: every exportable array's region and every MMAP workspace is a mapping of its
 * own, and the pools, V8's heap and the libraries need theirs. A process past the limit can map nothing
 * more, and V8 then aborts.
 */
import { readFileSync } from 'node:fs';

/** vm.max_map_count (Linux: /proc/sys/vm/max_map_count); undefined when unknown. */
export function maxMapCount(text?: string): number | undefined {
  let value = text;
  if (value === undefined) {
    try {
      value = readFileSync('/proc/sys/vm/max_map_count', 'utf8');
    } catch {
      return undefined;
    }
  }
  const count = Number(value.trim());
  return Number.isSafeInteger(count) && count > 0 ? count : undefined;
}

/** --max-mapped-regions' default under a limit of `limit` mappings: half of it, or `defaultCap` when the limit is unknown. */
export function mappedRegionsCapFor(limit: number | undefined, defaultCap: number): number {
  return limit === undefined ? defaultCap : Math.max(1, Math.floor(limit / 2));
}
