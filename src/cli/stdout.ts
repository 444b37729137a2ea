/**
 * How tensormemctl writes its output to stdout: whole, or failing with what went wrong and how far it
 * got. process.stdout alone did neither: to a regular file (`tensormemctl snapshot > before.json`) it
 * writes with writeSync and drops the count written, so a disk that filled up (a short write) left the
 * file cut short and the command exited 0; to a pipe whose reader went away (`| head`) a write larger
 * than the pipe's buffer failed later, as an 'error' event nothing heard, and the process ended with
 * Node's stack trace.
 */
import { fstatSync, writeSync } from 'node:fs';

/** Exit status of a command whose stdout reader went away: 128 + SIGPIPE's 13, as a shell shows a process SIGPIPE ended. */
export const STDOUT_CLOSED_EXIT_CODE = 141;

/** A write to stdout that failed after `written` of its `total` bytes; `closed` when the reader went away (EPIPE). */
export class StdoutWriteError extends Error {
  override readonly name = 'StdoutWriteError';
  readonly closed: boolean;

  constructor(
    readonly written: number,
    readonly total: number,
    readonly reason: string,
    code: string | undefined,
  ) {
    super(`cannot write to stdout after ${written} of ${total} bytes: ${reason}`);
    this.closed = code === 'EPIPE';
  }
}

export type WriteOut = (data: string | Buffer) => Promise<void>;

/**
 * A function that writes `data` to `stream` whole: to a regular file with writeSync until every byte is
 * in, to anything else (a pipe, a terminal) through the stream, resolving once it took the bytes. It
 * rejects with a StdoutWriteError.
 */
export function stdoutWriter(stream: NodeJS.WriteStream & { fd: number }): WriteOut {
  let isFile = false;
  try {
    isFile = fstatSync(stream.fd).isFile();
  } catch {
    // fd 1 closed (`>&-`): the stream's own write reports it.
  }
  // A failed write is reported to its callback and then emitted as 'error' too, which unheard ends
  // the process with a stack trace.
  stream.on('error', () => undefined);
  return (data) => {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    if (isFile) {
      let written = 0;
      try {
        while (written < bytes.length) {
          const count = writeSync(stream.fd, bytes, written, bytes.length - written);
          if (count === 0) throw Object.assign(new Error('the file took no more bytes'), { code: 'ENOSPC' });
          written += count;
        }
      } catch (error) {
        return Promise.reject(new StdoutWriteError(written, bytes.length, (error as Error).message, (error as NodeJS.ErrnoException).code));
      }
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      stream.write(bytes, (error) => (error ? reject(new StdoutWriteError(0, bytes.length, error.message, (error as NodeJS.ErrnoException).code)) : resolve()));
    });
  };
}
