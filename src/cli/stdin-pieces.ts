/**
 * How `tensormemctl put -` reads stdin: a piece at a time into the caller's buffer, reading no more
 * than the piece asked for (a producer that writes faster than the daemon takes is held back by the
 * pipe), and ending a read that waits on a silent producer when asked to (Ctrl-C).
 *
 * A pipe or a socket (`producer | tensormemctl put -`) is read straight into the piece (a net.Socket
 * with `onread`), with no Buffer per read: process.stdin hands each 64 KiB read over as a Buffer of its
 * own, copied into the piece and left to the garbage collector, which let up to some 40 MiB of them
 * pile up beside the 16 MiB piece (V8 collects external memory only after tens of MiB of it). A
 * regular file (`put - < FILE`) is read with fs.read into the piece too; anything else (a terminal,
 * /dev/null) through process.stdin, whose reads can be ended, unlike a blocking fs.read of it. A
 * directory and a listening socket (no data, no end: read, it waited for good) are refused.
 */
import { fstatSync, read as readCallback, readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { Socket } from 'node:net';
import type { OnReadOpts, SocketConstructorOpts } from 'node:net';
import type { Readable } from 'node:stream';

const read = promisify(readCallback);

/** Bytes a pipe read lands in when no fill waits for them (before the first, and between pieces). */
const SCRATCH_BYTES = 64 * 1024;

export interface PieceReader {
  /**
   * Reads into buffer[0, length) until it is full or the input ends; resolves to the bytes read (fewer
   * than `length` only at the end, 0 once ended). One fill at a time.
   */
  fill(buffer: Buffer, length: number): Promise<number>;
  /** Stops reading and lets go of the input: a fill under way resolves with the bytes it has. */
  close(): void;
}

/** stdin (fd 0), opened at the first fill: a pipe or socket by socketPieces, a file by filePieces, anything else through process.stdin. */
export function stdinPieces(): PieceReader {
  let reader: PieceReader | undefined;
  let closed = false;
  return {
    async fill(buffer, length) {
      if (closed) return 0;
      if (!reader) {
        const info = fstatSync(0);
        // process.stdin reads a directory (`put - < DIR`) as an empty stream: stdin would seem to end at once.
        if (info.isDirectory()) throw new Error('it is a directory (put - reads a pipe, a socket, a regular file or a terminal)');
        // A listening socket (`put - <&3`, fd 3 a server's) yields no data and no end: reading it waited for good.
        if (info.isSocket() && isListeningSocket(info.ino)) throw new Error('it is a listening socket, which yields no data (put - reads a connected socket, a pipe, a regular file or a terminal)');
        reader = info.isFIFO() || info.isSocket() ? socketPieces(0) : info.isFile() ? filePieces(0) : streamPieces(process.stdin);
      }
      return reader.fill(buffer, length);
    },
    close() {
      closed = true;
      reader?.close();
    },
  };
}

/**
 * Whether the socket of inode `ino` listens (TCP state LISTEN, or a unix socket with __SO_ACCEPTCON),
 * as Linux lists its sockets in /proc/net (the inode fstat gives a socket's descriptor). False where
 * there is no such list (another system) or the socket is not in it (another network namespace): then
 * it is read as any socket. The tables are read in turn until one lists the socket, unix first: reading
 * /proc/net/tcp or tcp6 walks every bucket of the kernel's TCP hash tables however few sockets there are
 * (30-50 ms each on a 2-core VM, 262,144 entries), and a spawned process's 'pipe' stdin is a unix socket
 * pair, which needs neither. `readTable` reads one table (tests count the reads).
 */
export function isListeningSocket(ino: number, readTable: (file: string) => string = (file) => readFileSync(file, 'latin1')): boolean {
  const inode = String(ino);
  /** The row of one /proc/net table that lists the socket (its inode in the column `inodeColumn`), split into fields; none where it cannot be read. */
  const rowOf = (file: string, inodeColumn: number): string[] | undefined => {
    let text: string;
    try {
      text = readTable(file);
    } catch {
      return undefined;
    }
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields[inodeColumn] === inode) return fields;
    }
    return undefined;
  };
  // unix: "Num RefCount Protocol Flags Type St Inode Path", Flags 0x10000 is __SO_ACCEPTCON (listening).
  const unix = rowOf('/proc/net/unix', 6);
  if (unix) return (parseInt(unix[3], 16) & 0x10000) !== 0;
  // tcp, tcp6: "sl local rem st ... uid timeout inode ...", st 0A is LISTEN.
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const tcp = rowOf(file, 9);
    if (tcp) return tcp[3] === '0A';
  }
  return false;
}

/** The regular file `fd` (`put - < FILE`), read from its current offset straight into the fill's buffer. */
export function filePieces(fd: number): PieceReader {
  let closed = false;
  return {
    async fill(buffer, length) {
      let filled = 0;
      while (filled < length && !closed) {
        const { bytesRead } = await read(fd, buffer, filled, length - filled, null);
        if (bytesRead === 0) break;
        filled += bytesRead;
      }
      return filled;
    },
    close() {
      closed = true;
    },
  };
}

/** The pipe or socket `fd`, read by the kernel straight into the buffer of the fill under way. */
export function socketPieces(fd: number): PieceReader {
  const scratch = Buffer.allocUnsafe(SCRATCH_BYTES);
  /** The fill under way: it takes reads until `filled` reaches `length`. */
  let want: { buffer: Buffer; length: number; filled: number; done: (bytes: number) => void; fail: (error: Error) => void } | undefined;
  /** What the next read lands in (onread asks for it after each read, and before the first). */
  let region: Buffer = scratch;
  /** Bytes read into scratch that no fill has taken yet, in order. */
  const early: Buffer[] = [];
  let ended = false;
  let failure: Error | undefined;

  const finish = () => {
    const current = want;
    want = undefined;
    current?.done(current.filled);
  };
  /** Copies bytes read into scratch into the fill under way; what it has no room for waits in `early`. */
  const deliver = (bytes: Buffer) => {
    let taken = 0;
    if (want) {
      taken = bytes.copy(want.buffer, want.filled, 0, Math.min(bytes.length, want.length - want.filled));
      want.filled += taken;
      if (want.filled === want.length) finish();
    }
    if (taken < bytes.length) early.push(Buffer.from(bytes.subarray(taken)));
  };
  // onread is an option of new net.Socket (Node 12.10 and later); this @types/node has it on connect's options only.
  const socketOptions: SocketConstructorOpts & { onread: OnReadOpts } = {
    fd,
    readable: true,
    writable: false,
    onread: {
      buffer: () => {
        region = want ? want.buffer.subarray(want.filled, want.length) : scratch;
        return region;
      },
      callback: (bytes, into) => {
        if (want && into === region && into !== scratch) {
          want.filled += bytes;
          if (want.filled === want.length) finish();
        } else {
          deliver(Buffer.from(into.buffer, into.byteOffset, bytes));
        }
        // Reading goes on only while a fill waits: otherwise the pipe fills and holds the producer back.
        return want !== undefined;
      },
    },
  };
  const socket = new Socket(socketOptions);
  const end = () => {
    ended = true;
    finish();
  };
  socket.on('end', end);
  socket.on('close', end);
  socket.on('error', (error) => {
    failure = error;
    ended = true;
    const current = want;
    want = undefined;
    current?.fail(error);
  });

  return {
    fill(buffer, length) {
      return new Promise<number>((done, fail) => {
        want = { buffer, length, filled: 0, done, fail };
        while (early.length > 0 && want) deliver(early.shift()!);
        if (!want) return;
        if (failure) {
          want = undefined;
          fail(failure);
        } else if (ended || length === 0) finish();
        else socket.resume();
      });
    },
    close() {
      socket.destroy();
      end();
    },
  };
}

/** A Readable (process.stdin when it is not a pipe), its chunks copied into the fill under way. */
export function streamPieces(stream: Readable): PieceReader {
  const chunks = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  /** What a chunk held past the fill it completed: the next fill's first bytes. */
  let rest: Buffer | undefined;
  let closed = false;
  const nextChunk = async (): Promise<Buffer | undefined> => {
    if (rest) {
      const chunk = rest;
      rest = undefined;
      return chunk;
    }
    for (;;) {
      // A stream destroyed by close() ends the iteration, as an error (premature close) or as its end.
      const next = await chunks.next().catch((error: unknown) => {
        if (closed) return { done: true as const, value: undefined };
        throw error;
      });
      if (next.done) return undefined;
      if (next.value.length > 0) return next.value;
    }
  };
  return {
    async fill(buffer, length) {
      let filled = 0;
      while (filled < length && !closed) {
        const chunk = await nextChunk();
        if (!chunk) break;
        const taken = chunk.copy(buffer, filled, 0, Math.min(chunk.length, length - filled));
        if (taken < chunk.length) rest = chunk.subarray(taken);
        filled += taken;
      }
      return filled;
    },
    close() {
      closed = true;
      // Without an error: destroy(error) with no read under way to hear it would be an uncaught 'error'.
      stream.destroy();
    },
  };
}
