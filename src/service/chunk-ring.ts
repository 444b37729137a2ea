/**
 * The buffers of one outgoing byte stream (a ReadArray call, a data plane GET): a fixed number, each
 * handed out, filled from pool memory, written to the transport and given back from the write's
 * callback, once the transport has taken the bytes. The copy out of pool memory into one buffer then
 * overlaps the sending of the others, and a long read allocates `capacity` buffers, not one per chunk.
 */

/** A fixed set of buffers handed out in turn; `take` waits until one is given back. */
export class ChunkRing {
  private readonly free: Buffer[] = [];
  private readonly waiting: Array<(buffer: Buffer | null) => void> = [];
  private created = 0;
  private abandoned = false;

  constructor(
    private readonly capacity: number,
    private readonly bufferBytes: number,
  ) {}

  /** A buffer, or null once the ring is abandoned (the call went away: write callbacks may never come). */
  take(): Promise<Buffer | null> {
    if (this.abandoned) return Promise.resolve(null);
    const buffer = this.free.pop();
    if (buffer) return Promise.resolve(buffer);
    if (this.created < this.capacity) {
      this.created++;
      return Promise.resolve(Buffer.allocUnsafeSlow(this.bufferBytes));
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  /** The stream went away: waiting and later `take`s get null. */
  abandon(): void {
    this.abandoned = true;
    for (const waiter of this.waiting.splice(0)) waiter(null);
  }

  give(buffer: Buffer): void {
    const waiter = this.waiting.shift();
    if (waiter) waiter(buffer);
    else this.free.push(buffer);
  }
}
