/**
 * --maxphysicalbytes: the daemon's physical memory, checked before every allocation that costs host RAM
 * (JavaCPP's maxPhysicalBytes). When the request would pass the cap it asks for relief (the lease
 * reclamation sweep, pool trimming, and malloc_trim of the C heap, where glibc keeps the freed buffers
 * of bulk transfers resident) and checks again, a bounded number of times, as JavaCPP retries
 * after System.gc(); then it refuses with PHYSICAL_MEMORY_LIMIT and the numbers.
 *
 * What is counted: the larger of the resident set (RSS) now and the RSS the daemon had before it held
 * any chunk plus the bytes of the host-RAM chunks the pools hold now (countChunks). Pool chunks are
 * anonymous mappings, resident only once written, so RSS alone lets allocations far past the cap
 * through and the writes that follow take the daemon past it with nothing refused; the chunk count
 * charges a chunk when it is taken. RSS stays the figure when it is the larger (V8's heap, buffers,
 * pages of MMAP workspaces).
 */
import { PhysicalMemoryLimitError } from '../errors';
import { formatBytes } from '../units';

export class PhysicalMemoryGuard {
  private committedChunkBytes: () => number = () => 0;
  /** RSS when countChunks was called (before the pools held any chunk). */
  private baselineBytes = 0;

  constructor(
    readonly maxPhysicalBytes: number,
    private readonly relieve: () => void = () => {},
    private readonly readPhysicalBytes: () => number = () => process.memoryUsage.rss(),
    private readonly maxRetries = 2,
  ) {}

  /**
   * Counts the host-RAM chunks the pools hold (`committedBytes`, read at every check) on top of the
   * resident set measured now, which must be taken before any chunk is. MemoryManager calls it once.
   */
  countChunks(committedBytes: () => number): void {
    this.committedChunkBytes = committedBytes;
    this.baselineBytes = this.readPhysicalBytes();
  }

  /** The resident set (RSS), as GetMemoryInfo reports it. */
  physicalBytes(): number {
    return this.readPhysicalBytes();
  }

  /** The RSS before any chunk was held (countChunks), plus the host-RAM chunks held now. */
  committedBytes(): number {
    return this.baselineBytes + this.committedChunkBytes();
  }

  /** The figure the cap is checked against: max(RSS, RSS at start + host-RAM chunks held). */
  countedBytes(): number {
    return Math.max(this.readPhysicalBytes(), this.committedBytes());
  }

  /** Throws PhysicalMemoryLimitError unless counted bytes + `bytes` stay within the cap. 0 disables the cap. */
  check(bytes: number): void {
    if (this.maxPhysicalBytes <= 0) return;
    let counted = this.countedBytes();
    for (let attempt = 0; counted + bytes > this.maxPhysicalBytes && attempt < this.maxRetries; attempt++) {
      this.relieve();
      counted = this.countedBytes();
    }
    if (counted + bytes > this.maxPhysicalBytes) throw this.refusal(bytes);
  }

  private refusal(bytes: number): PhysicalMemoryLimitError {
    const rss = this.readPhysicalBytes();
    const chunks = this.committedChunkBytes();
    const counted = Math.max(rss, this.baselineBytes + chunks);
    const error = new PhysicalMemoryLimitError(bytes, counted, this.maxPhysicalBytes);
    // physicalBytes is the larger of two figures: say both (a chunk is charged before it is written, so RSS may be far lower).
    error.message = error.message.replace(
      '. Try:',
      `; physicalBytes is the larger of RSS ${formatBytes(rss)} and RSS at start ${formatBytes(this.baselineBytes)} + host-RAM chunks held ${formatBytes(chunks)}. Try:`,
    );
    Object.assign(error.metadata, { rss_bytes: String(rss), baseline_rss_bytes: String(this.baselineBytes), chunk_bytes: String(chunks) });
    return error;
  }
}
