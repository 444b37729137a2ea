/**
 * --maxphysicalbytes: the daemon's resident set, checked before every allocation that costs host RAM
 * (JavaCPP's maxPhysicalBytes). When the request would pass the cap it asks for relief (the lease
 * reclamation sweep and pool trimming) and checks again, a bounded number of times, as JavaCPP retries
 * after System.gc(); then it refuses with PHYSICAL_MEMORY_LIMIT and the numbers.
 */
import { PhysicalMemoryLimitError } from '../errors';

export class PhysicalMemoryGuard {
  constructor(
    readonly maxPhysicalBytes: number,
    private readonly relieve: () => void = () => {},
    private readonly readPhysicalBytes: () => number = () => process.memoryUsage.rss(),
    private readonly maxRetries = 2,
  ) {}

  physicalBytes(): number {
    return this.readPhysicalBytes();
  }

  /** Throws PhysicalMemoryLimitError unless physical bytes + `bytes` stay within the cap. 0 disables the cap. */
  check(bytes: number): void {
    if (this.maxPhysicalBytes <= 0) return;
    let physical = this.readPhysicalBytes();
    for (let attempt = 0; physical + bytes > this.maxPhysicalBytes && attempt < this.maxRetries; attempt++) {
      this.relieve();
      physical = this.readPhysicalBytes();
    }
    if (physical + bytes > this.maxPhysicalBytes) throw new PhysicalMemoryLimitError(bytes, physical, this.maxPhysicalBytes);
  }
}
