/**
 * Tenants file reloads (SIGHUP) one at a time, now that a reload reads and parses the file off the event
 * loop (tenants-file-worker.ts) and so spans turns. A reload reads the file, then applies what it read in
 * one turn (no call sees a table half applied). A request while one is reading queues one more, which
 * reads the file again once that one has applied (or been refused): so the file as it is after the last
 * SIGHUP is the one in force at the end, and applies never run out of order nor two at once. Any number of
 * requests while one is reading make one more reload, not one each (a burst of SIGHUPs reads the file
 * twice). close() (the drain) abandons the read in flight and the queued reload: neither applies.
 */
export interface TenantsReloadSteps<T> {
  /** Reads and checks the file (off the event loop); rejects with the error that refuses it. `signal`: close() abandons it. */
  read(signal: AbortSignal): Promise<T>;
  /** Puts what was read in force, synchronously; throws to refuse it (nothing applied). */
  apply(read: T): void;
  /** The file was refused (read or apply threw): the tenants in force stay. */
  refused(error: Error): void;
}

export class TenantsReloadQueue<T> {
  private readonly abandon = new AbortController();
  /** The reload reading now, if any. */
  private running: Promise<boolean> | undefined;
  /** The one reload queued behind it, shared by every request made while it reads. */
  private queued: Promise<boolean> | undefined;

  constructor(private readonly steps: TenantsReloadSteps<T>) {}

  /** Whether close() was called: requests from then on do nothing. */
  get closed(): boolean {
    return this.abandon.signal.aborted;
  }

  /** Whether a reload is reading or queued. */
  get busy(): boolean {
    return this.running !== undefined || this.queued !== undefined;
  }

  /**
   * A reload: whether it took the file (false: refused, or abandoned by close()). While one reads, the
   * reload queued behind it (its promise is every such request's).
   */
  request(): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    if (this.queued) return this.queued;
    if (!this.running) return this.start();
    this.queued = this.running.then(() => {
      this.queued = undefined;
      return this.start();
    });
    return this.queued;
  }

  /** Abandons the read in flight and the queued reload: neither applies, both resolve false. */
  close(): void {
    this.abandon.abort();
  }

  private start(): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    const run = this.once();
    this.running = run;
    // Before the queued reload's own continuation on `run` (registered later), so that it finds none running.
    void run.then(() => {
      if (this.running === run) this.running = undefined;
    });
    return run;
  }

  private async once(): Promise<boolean> {
    let read: T;
    try {
      read = await this.steps.read(this.abandon.signal);
    } catch (error) {
      if (this.closed) return false;
      this.steps.refused(error as Error);
      return false;
    }
    if (this.closed) return false;
    try {
      this.steps.apply(read);
      return true;
    } catch (error) {
      this.steps.refused(error as Error);
      return false;
    }
  }
}
