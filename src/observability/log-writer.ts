/**
 * Where the daemon's JSON log lines go: a file descriptor (stderr), written at once while it takes them,
 * and never waited on. A pipe whose reader has stopped (`tensormemd 2>&1 | sleep 1000`, a log shipper
 * that hangs) answers EAGAIN: the line is kept, with those after it, up to `maxQueuedBytes`, and tried
 * again every `retryMs`; lines past that bound are dropped and counted, and once the backlog is written
 * `onDropped` is told how many (the daemon logs `log_lines_dropped`). Before, every line was written
 * synchronously with pino's retry-until-written loop, and a full pipe stopped the whole daemon (every
 * tenant's calls, the lease sweep, SIGTERM) until its reader read again.
 *
 * A closed reader (EPIPE) or descriptor (EBADF) turns the log off: no one can read it any more. Any
 * other failure (ENOSPC on a full disk) drops that line, counted as above.
 */
import { writeSync as fsWriteSync } from 'node:fs';

/** Most bytes of lines held while the descriptor takes none (the rest are dropped and counted). */
export const DEFAULT_MAX_QUEUED_BYTES = 1024 * 1024;
/** How often a held backlog is tried again. */
export const DEFAULT_RETRY_MS = 50;
/** How long `flushSync` (at exit) keeps trying a descriptor that takes nothing, before it gives up. */
export const DEFAULT_EXIT_FLUSH_MS = 1000;

export interface LogWriterOptions {
  maxQueuedBytes?: number;
  retryMs?: number;
  exitFlushMs?: number;
  /** fs.writeSync, replaceable for tests. */
  writeSync?: (fd: number, data: Buffer) => number;
}

export class LogWriter {
  /** Told, once a backlog is written, how many lines were dropped since the last such call. */
  onDropped?: (dropped: number) => void;
  private readonly queue: Buffer[] = [];
  private queuedBytes = 0;
  private dropped = 0;
  private off = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly maxQueuedBytes: number;
  private readonly retryMs: number;
  private readonly exitFlushMs: number;
  private readonly writeSync: (fd: number, data: Buffer) => number;

  constructor(
    private readonly fd: number,
    options: LogWriterOptions = {},
  ) {
    this.maxQueuedBytes = options.maxQueuedBytes ?? DEFAULT_MAX_QUEUED_BYTES;
    this.retryMs = options.retryMs ?? DEFAULT_RETRY_MS;
    this.exitFlushMs = options.exitFlushMs ?? DEFAULT_EXIT_FLUSH_MS;
    this.writeSync = options.writeSync ?? fsWriteSync;
  }

  /** pino's destination interface: one whole line (or a few) a call. */
  write(text: string): boolean {
    if (this.off) return true;
    const line = Buffer.from(text);
    if (this.queue.length > 0) {
      this.hold(line);
      return true;
    }
    const written = this.tryWrite(line);
    if (written === undefined) return true;
    if (written < line.length) {
      // Held whatever the bound: a line begun must be ended, or the next one would be glued to its half.
      this.queue.push(line.subarray(written));
      this.queuedBytes += line.length - written;
      this.scheduleRetry();
    }
    return true;
  }

  /** Lines held, for tests and the exit flush. */
  get backlogBytes(): number {
    return this.queuedBytes;
  }

  /**
   * Writes the backlog before the process exits, trying for at most `exitFlushMs` while the descriptor
   * takes nothing; whatever is still held then is lost (a reader that never reads must not hold the exit).
   */
  flushSync(): void {
    const deadline = performance.now() + this.exitFlushMs;
    const pause = new Int32Array(new SharedArrayBuffer(4));
    while (!this.off && this.queue.length > 0) {
      if (this.drain()) break;
      if (performance.now() >= deadline) break;
      Atomics.wait(pause, 0, 0, Math.min(10, this.retryMs));
    }
  }

  /** Bytes written, or undefined where the descriptor failed (the line is dropped, or the log turned off). */
  private tryWrite(data: Buffer): number | undefined {
    try {
      return this.writeSync(this.fd, data);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN' || code === 'EWOULDBLOCK') return 0;
      if (code === 'EPIPE' || code === 'EBADF') {
        this.turnOff();
        return undefined;
      }
      this.dropped++;
      // Said by the retry, as for lines dropped behind a backlog.
      this.scheduleRetry();
      return undefined;
    }
  }

  private hold(line: Buffer): void {
    if (this.queuedBytes + line.length > this.maxQueuedBytes) {
      this.dropped++;
      return;
    }
    this.queue.push(line);
    this.queuedBytes += line.length;
  }

  /** Writes held lines while the descriptor takes them; true once none is left. */
  private drain(): boolean {
    while (this.queue.length > 0) {
      const head = this.queue[0];
      const written = this.tryWrite(head);
      if (this.off) return true;
      if (written === undefined) {
        this.queue.shift();
        this.queuedBytes -= head.length;
        continue;
      }
      this.queuedBytes -= written;
      if (written < head.length) {
        this.queue[0] = head.subarray(written);
        return false;
      }
      this.queue.shift();
    }
    return true;
  }

  private scheduleRetry(): void {
    // Unref'd: a held backlog does not keep the process up (the exit flushes what it can).
    this.retryTimer ??= setTimeout(() => this.retry(), this.retryMs).unref();
  }

  private retry(): void {
    this.retryTimer = undefined;
    if (!this.drain()) {
      this.scheduleRetry();
      return;
    }
    if (this.dropped > 0) {
      const dropped = this.dropped;
      this.dropped = 0;
      this.onDropped?.(dropped);
    }
  }

  private turnOff(): void {
    this.off = true;
    this.queue.length = 0;
    this.queuedBytes = 0;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }
}
