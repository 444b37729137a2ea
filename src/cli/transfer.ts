/**
 * `tensormemctl put FILE` (or `put -`, stdin) / `get --array ID FILE` (or `-`, stdout): stream a file
 * into or out of an array with the typed client (its data plane or WriteArray / ReadArray), a piece at
 * a time (never the whole file or stream in memory), with a progress bar on stderr when stderr is a
 * terminal. put sends each piece's CRC-32C with it, which the daemon checks (data plane or WriteArray).
 */
import { constants } from 'node:os';
import { status as Status } from '@grpc/grpc-js';
import { open, stat } from 'node:fs/promises';
import { ELEMENT_BYTES, DataTypeName, byteSizeOf } from '../memory/data-types';
import { LeaseSession, TensormemClient } from '../client/tensormem-client';
import type { ArrayInfo } from '../client/tensormem-client';
import { timestampMs } from '../client/timestamp';
import { formatIec, MiB } from '../units';
import { UsageError } from './usage-error';
import { kindOf } from '../file-kind';
import { fileTarget, replaceFile } from './replace-file';
import { StdoutWriteError } from './stdout';
import type { WriteOut } from './stdout';
import type { PieceReader } from './stdin-pieces';

/** Bytes moved per WriteArray / ReadArray call: large enough that a call's setup is noise, small enough for a smooth progress bar. */
export const PIECE_BYTES = 16 * MiB;

export class Progress {
  private readonly started = Date.now();
  private lastDrawMs = 0;

  constructor(
    private readonly label: string,
    private readonly totalBytes: number,
    private readonly stream: NodeJS.WriteStream | undefined,
  ) {}

  update(doneBytes: number): void {
    if (!this.stream) return;
    const now = Date.now();
    if (doneBytes < this.totalBytes && now - this.lastDrawMs < 100) return;
    this.lastDrawMs = now;
    const ratio = this.totalBytes > 0 ? doneBytes / this.totalBytes : 1;
    const width = 30;
    const filled = Math.round(ratio * width);
    const seconds = Math.max((now - this.started) / 1000, 1e-3);
    this.stream.write(`\r${this.label} [${'#'.repeat(filled)}${' '.repeat(width - filled)}] ${(100 * ratio).toFixed(0).padStart(3)}% ${formatIec(doneBytes)} / ${formatIec(this.totalBytes)} ${formatIec(Math.round(doneBytes / seconds))}/s`);
  }

  done(): void {
    if (this.stream) this.stream.write('\n');
  }
}

/** A put or get stopped by a signal, after it cleaned up; the process should exit with exitCode (128 + the signal's number). */
export class InterruptedError extends Error {
  readonly exitCode: number;

  constructor(readonly signal: NodeJS.Signals) {
    super(`interrupted by ${signal}`);
    this.name = 'InterruptedError';
    this.exitCode = 128 + (constants.signals[signal] ?? 0);
  }
}

const INTERRUPTS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/**
 * Runs `work` with SIGINT, SIGTERM and SIGHUP turned into an abort (reason: an InterruptedError) that
 * put and get check between pieces, so that a transfer stopped by Ctrl-C still closes the lease it
 * opened and removes its temporary file. The first signal only aborts; a second one ends the process
 * at once, as if nothing were listening.
 */
export async function interruptible<T>(work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const handlers = INTERRUPTS.map((name) => {
    const handler = () => {
      removeHandlers();
      controller.abort(new InterruptedError(name));
    };
    process.on(name, handler);
    return [name, handler] as const;
  });
  const removeHandlers = () => {
    for (const [name, handler] of handlers) process.removeListener(name, handler);
  };
  try {
    return await work(controller.signal);
  } finally {
    removeHandlers();
  }
}

/** "float32" or "DATA_TYPE_FLOAT32" → "DATA_TYPE_FLOAT32". */
export function parseDataType(text: string): DataTypeName {
  const name = (text.toUpperCase().startsWith('DATA_TYPE_') ? text.toUpperCase() : `DATA_TYPE_${text.toUpperCase()}`) as DataTypeName;
  if (!(name in ELEMENT_BYTES)) {
    throw new UsageError(`Expected one of ${Object.keys(ELEMENT_BYTES).map((k) => k.replace('DATA_TYPE_', '').toLowerCase()).join(', ')} for --dtype but received "${text}"`);
  }
  return name;
}

/** "1024,256" → [1024, 256]. */
export function parseShape(text: string): number[] {
  return text.split(',').map((part, index) => {
    const trimmed = part.trim();
    if (!/^\d+$/.test(trimmed) || !Number.isSafeInteger(Number(trimmed))) throw new UsageError(`Expected a non-negative integer for --shape[${index}] but received "${part}"`);
    return Number(trimmed);
  });
}

export interface PutOptions {
  /** Write into this existing array (needs its lease's token); otherwise a new array is allocated. */
  arrayId?: string;
  /** Lease token (for --array) or tenant token (for a new lease). */
  token?: string;
  tenant?: string;
  shape?: string;
  dtype?: string;
  placement?: 'PLACEMENT_DEVICE' | 'PLACEMENT_HOST_ONLY';
  label?: string;
  ttlSeconds?: number;
  progress?: NodeJS.WriteStream;
  /** Checked before each piece (see interruptible): aborted, put stops, closes the lease it opened and throws the reason. */
  signal?: AbortSignal;
}

export interface PutResult {
  array: ArrayInfo;
  bytes_written: number;
  /**
   * Set when put opened a lease for a new array: the array lives as long as this lease. renew_error: the
   * renewal when every byte was written failed (not because the lease ended), so the lease expires at
   * expires_at (its last keep-alive renewal's), not ttl_seconds from the end of put.
   */
  lease?: { lease_id: string; token: string; ttl_seconds: number; expires_at?: string; renew_error?: string };
}

/** Where put reads its bytes: a regular file (putFile) or a stream (putStream: stdin). */
interface PutSource {
  /** How messages name it: the path, or "stdin". */
  readonly name: string;
  /** Its size in bytes when known before reading (a file's); a stream's is the array's, which it must fill. */
  readonly bytes?: number;
  /** Reads up to `length` bytes (at least 1) into `buffer` from position `at`; fewer only where the source ends, 0 once it has ended. */
  read(buffer: Buffer, length: number, at: number): Promise<number>;
  /** The error for a source that ended after `at` of the `expected` bytes put was to write into `array`. */
  endedShort(at: number, expected: number, array: ArrayInfo): Error;
  /** Reads past the `bytes` put wrote: the error for a source longer than that, or undefined when it ends there. */
  longerThan(bytes: number, array: ArrayInfo): Promise<Error | undefined>;
}

/**
 * The array put writes into, and the lease put opened for it (when it made a new one): `--array` with
 * its lease's token, or a new array (of `shapeOf`'s shape) in a new lease.
 */
async function arrayToPut(
  client: TensormemClient,
  source: PutSource,
  options: PutOptions,
  shapeOf: (dataType: DataTypeName, dtypeText: string) => number[],
): Promise<{ session: LeaseSession; array: ArrayInfo; opened?: PutResult['lease'] }> {
  if (options.arrayId) {
    if (!options.token) throw new UsageError('put --array needs the token of the lease that holds the array (--token or $TENSORMEM_TOKEN)');
    const session = client.sessionOf(options.token);
    const array = await session.get(options.arrayId);
    if (source.bytes !== undefined && source.bytes > array.byte_size) {
      throw new Error(`${source.name} has ${source.bytes} bytes (${formatIec(source.bytes)}), more than array ${array.array_id}'s ${array.byte_size} bytes (${formatIec(array.byte_size)})`);
    }
    return { session, array };
  }
  const dataType = parseDataType(options.dtype ?? 'uint8');
  // The --dtype as the user typed it (float32, not DATA_TYPE_FLOAT32).
  const shape = shapeOf(dataType, options.dtype === undefined ? '--dtype uint8 (the default)' : `--dtype ${options.dtype}`);
  const session = await client.openLease({ tenant: options.tenant, clientName: 'tensormemctl put', ttlSeconds: options.ttlSeconds, tenantToken: options.token });
  const opened = { lease_id: session.leaseId, token: session.token, ttl_seconds: session.lease.ttl_seconds };
  try {
    return { session, array: await session.allocate({ dataType, shape, placement: options.placement, label: options.label ?? source.name }), opened };
  } catch (error) {
    throw await closedAfter(error, session, opened);
  }
}

/** The daemon's answer for a lease that has ended (expired, closed, evicted): its arrays went with it. */
function leaseEnded(error: Error): boolean {
  return (error as { reason?: string }).reason === 'LEASE_EXPIRED' || (error as { code?: number }).code === Status.NOT_FOUND;
}

/** A Timestamp as ISO 8601 (UTC). */
function expiresAtIso(timestamp: Parameters<typeof timestampMs>[0]): string {
  return timestamp ? new Date(timestampMs(timestamp)).toISOString() : 'unknown';
}

/**
 * `error`, after closing the lease put opened: it would otherwise hold its array, whose token nobody
 * saw, until its TTL ends. A close that fails too is told with it.
 */
async function closedAfter(error: unknown, session: LeaseSession, opened: NonNullable<PutResult['lease']>): Promise<unknown> {
  const closeError = await session.close().then(
    () => undefined,
    (e: unknown) => e as Error,
  );
  if (!closeError) return error;
  // A lease that had already ended (expired, evicted) took its array with it: nothing is held.
  if (leaseEnded(closeError)) {
    return new Error(`${(error as Error).message}; lease ${opened.lease_id}, which put opened, had already ended, and its array with it`);
  }
  return new Error(`${(error as Error).message}; closing lease ${opened.lease_id}, which put opened, failed too (${closeError.message}): it holds the array until its TTL (${opened.ttl_seconds}s) ends, unless the daemon has stopped, which ends its leases`);
}

/**
 * Writes `source` into the array arrayToPut gives, a PIECE_BYTES piece at a time: each piece is read
 * whole (or up to the source's end), then written with LeaseSession.write (the data plane when the
 * daemon names one: OpenLease's answer for the lease put opened, GetArray's for --array; else WriteArray;
 * either way with the piece's CRC-32C, which the daemon checks) before the next is read, so that one piece is in memory and a
 * daemon that takes the bytes slowly slows the reading. A source that ends short of the bytes expected
 * (the file's size, or for a stream the array's) or goes on past them fails after writing what it read.
 */
async function putFrom(client: TensormemClient, source: PutSource, options: PutOptions, shapeOf: (dataType: DataTypeName, dtypeText: string) => number[]): Promise<PutResult> {
  options.signal?.throwIfAborted();
  const { session, array, opened } = await arrayToPut(client, source, options, shapeOf);
  // The lease put opened is renewed while put runs (KeepAlive, not released on disconnect: the array
  // outlives put), so that a slow producer or link is not cut off by --ttl, and once more when every
  // byte is written (RenewLease: the keep-alive's last message does not renew), so that it lives its
  // TTL from the end of put, as put says. A keep-alive renewal that fails is not fatal here: a write
  // after the lease's end fails naming it.
  if (opened) session.startKeepAlive();
  try {
    const expected = source.bytes ?? array.byte_size;
    const progress = new Progress(`put ${array.array_id}`, expected, options.progress);
    let written = 0;
    try {
      const buffer = Buffer.allocUnsafe(Math.min(PIECE_BYTES, Math.max(expected, 1)));
      while (written < expected) {
        options.signal?.throwIfAborted();
        const bytesRead = await source.read(buffer, Math.min(buffer.length, expected - written), written);
        options.signal?.throwIfAborted();
        if (bytesRead === 0) throw source.endedShort(written, expected, array);
        // Each piece's CRC-32C goes with it (X-Tensormem-Crc32c, or WriteArrayHeader.crc32c), and the daemon checks it.
        written += await session.write(array.array_id, buffer.subarray(0, bytesRead), written, undefined, { checksum: true });
        progress.update(written);
      }
      const longer = await source.longerThan(expected, array);
      // An interrupt while it waited (stdin held open, put not knowing whether more comes) ended that
      // read as an end of input: put stops as interrupted, not as a success.
      options.signal?.throwIfAborted();
      if (longer) throw longer;
    } finally {
      progress.done();
    }
    if (opened) {
      session.stopKeepAlive();
      const renewError = await session.renew().then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      // A lease that has ended took the array with it: put fails (closedAfter says so). Any other failure
      // (the daemon slow past the deadline, a connection blip) leaves the lease as its last keep-alive
      // renewal left it: the array is written and kept, and put says until when instead of --ttl.
      if (renewError && leaseEnded(renewError)) throw renewError;
      if (renewError) return { array, bytes_written: written, lease: { ...opened, expires_at: expiresAtIso(session.lease.expires_at), renew_error: renewError.message } };
    }
    return { array, bytes_written: written, lease: opened };
  } catch (error) {
    throw opened ? await closedAfter(error, session, opened) : error;
  } finally {
    session.stopKeepAlive();
  }
}

export async function putFile(client: TensormemClient, path: string, options: PutOptions): Promise<PutResult> {
  // A pipe, a terminal or a device has no size to shape the array by (stat says 0): only regular files.
  // Checked before opening: opening a FIFO with no writer would block.
  // The operation's own message ("ENOENT: no such file or directory, stat 'x'") does not say who failed.
  const cannotRead = (error: Error): never => {
    throw new Error(`put cannot read ${path}: ${error.message}`);
  };
  const info = await stat(path).catch(cannotRead);
  if (!info.isFile()) throw new Error(`put reads a regular file, and ${path} is ${kindOf(info)}: save the data to a file first, then put that file, or pipe it into put - with --shape or --array`);
  const file = await open(path, 'r').catch(cannotRead);
  try {
    const fileBytes = (await file.stat()).size;
    const source: PutSource = {
      name: path,
      bytes: fileBytes,
      read: async (buffer, length, at) => (await file.read(buffer, 0, length, at).catch(cannotRead)).bytesRead,
      endedShort: (at, expected) => new Error(`${path} ended at ${at} bytes while ${expected} were expected (was it truncated?)`),
      // A file that reads longer than its size (one still being written, or a /proc or /sys file, whose
      // size is 0) would be cut short without a word.
      longerThan: async (bytes) =>
        (await file.read(Buffer.alloc(1), 0, 1, bytes)).bytesRead > 0 ? new Error(`${path} has more bytes than the ${bytes} its size said when put started (is it still being written, or a /proc or /sys file?)`) : undefined,
    };
    return await putFrom(client, source, options, (dataType, dtypeText) => {
      const shape = options.shape ? parseShape(options.shape) : [fileBytes / ELEMENT_BYTES[dataType]];
      if (!Number.isInteger(shape[0])) throw new Error(`${path} has ${fileBytes} bytes, not a whole number of ${dtypeText} elements (${ELEMENT_BYTES[dataType]} bytes); pass --shape`);
      const arrayBytes = byteSizeOf(dataType, shape);
      if (arrayBytes !== fileBytes) throw new Error(`--shape ${shape.join(',')} ${dtypeText} makes ${arrayBytes} bytes but ${path} has ${fileBytes} bytes`);
      return shape;
    });
  } finally {
    await file.close();
  }
}

/**
 * `put -`: streams `input` (stdin: stdinPieces) into array --array, or into a new array of --shape (and
 * --dtype) in a new lease; either way the array's size is the number of bytes it must give. The daemon
 * is asked (GetArray, or OpenLease and AllocateArray: arrayToPut) before `input` is first read, so that a
 * daemon that is down or refuses fails put at once, whatever stdin does. It is read
 * a piece at a time into put's one PIECE_BYTES buffer (never the whole input), and not read while a
 * piece is being written, so a daemon that takes the bytes slowly holds the producer back.
 * Stdin that ends short of the array's size is an error naming both sizes (the bytes it gave are
 * written: an existing array's first bytes hold them and the rest is unchanged; a new array goes with
 * the lease put opened, which is closed); stdin longer than the array is an error once its first byte
 * past the end is read (the array holds the bytes before it; none past its end is written, and the
 * rest of stdin is not read).
 */
export async function putStream(client: TensormemClient, input: PieceReader, options: PutOptions): Promise<PutResult> {
  if (!options.arrayId && !options.shape) {
    throw new UsageError('put - (stdin) needs the size of the array to fill: --array ID (an existing array, with its lease\'s --token) or --shape N[,N...] [--dtype NAME] (a new one); ./- is a file named "-"');
  }
  // Ends a fill that waits on a producer that sends nothing; putFrom then throws the abort's reason.
  const abort = () => input.close();
  options.signal?.addEventListener('abort', abort, { once: true });
  const read = (buffer: Buffer, length: number) =>
    input.fill(buffer, length).catch((error: unknown) => {
      throw new Error(`put cannot read stdin: ${(error as Error).message}`);
    });
  const newArrayGoes = ': put closes the lease it opened, and the new array with it';
  const source: PutSource = {
    name: 'stdin',
    read,
    endedShort: (at, expected, array) => {
      const holds = options.arrayId ? (at > 0 ? `: its first ${at} bytes hold stdin's, the rest is as it was` : ': it is as it was') : newArrayGoes;
      return new Error(`stdin ended after ${at} bytes (${formatIec(at)}), short of the ${expected} bytes (${formatIec(expected)}) of array ${array.array_id}${holds}`);
    },
    longerThan: async (bytes, array) =>
      (await read(Buffer.alloc(1), 1)) === 0
        ? undefined
        : new Error(`stdin has more than the ${bytes} bytes (${formatIec(bytes)}) of array ${array.array_id}: put wrote the first ${bytes} and read no further${options.arrayId ? '' : newArrayGoes}`),
  };
  try {
    return await putFrom(client, source, options, () => parseShape(options.shape!));
  } finally {
    options.signal?.removeEventListener('abort', abort);
    // Not read to its end when put failed or stdin was longer: a producer still writing gets EPIPE.
    input.close();
  }
}

/** The lease token a get needs, checked before anything else. */
function getToken(token: string | undefined): string {
  if (!token) throw new UsageError('get needs the token of the lease that holds the array (--token or $TENSORMEM_TOKEN)');
  return token;
}

/** The session and the array a get reads (GetArray: its answer also names the data plane, where there is one, for the reads). */
async function arrayToGet(client: TensormemClient, arrayId: string, token: string): Promise<{ session: LeaseSession; array: ArrayInfo }> {
  const session = client.sessionOf(token);
  return { session, array: await session.get(arrayId) };
}

/**
 * Reads `array` a PIECE_BYTES piece at a time, each handed to `write` (with its offset) and written
 * before the next is read, so that no more than one piece is in memory; progress on options.progress.
 * Resolves to the bytes read.
 */
async function readPieces(
  session: LeaseSession,
  array: ArrayInfo,
  options: { progress?: NodeJS.WriteStream; signal?: AbortSignal },
  write: (piece: Buffer, at: number) => Promise<void>,
): Promise<number> {
  const arrayId = array.array_id;
  const progress = new Progress(`get ${arrayId}`, array.byte_size, options.progress);
  let read = 0;
  try {
    while (read < array.byte_size) {
      options.signal?.throwIfAborted();
      const piece = await session.read(arrayId, read, Math.min(PIECE_BYTES, array.byte_size - read));
      if (piece.length === 0) throw new Error(`ReadArray of ${arrayId} returned no bytes at offset ${read} of ${array.byte_size}`);
      await write(piece, read);
      read += piece.length;
      progress.update(read);
    }
  } finally {
    progress.done();
  }
  return read;
}

/**
 * Streams the array into PATH, whole or not at all (replaceFile: a temporary file next to it, synced,
 * then renamed onto it; PATH a symbolic link: the file it links to). On any failure PATH is left as it
 * was and the temporary file is removed.
 */
export async function getFile(
  client: TensormemClient,
  arrayId: string,
  path: string,
  options: { token?: string; progress?: NodeJS.WriteStream; signal?: AbortSignal },
): Promise<{ array: ArrayInfo; bytes_read: number }> {
  const token = getToken(options.token);
  const target = await fileTarget(path, 'get', `get --array ${arrayId} - writes the array to stdout`);
  const { session, array } = await arrayToGet(client, arrayId, token);
  let read = 0;
  await replaceFile(target, 'get', async (file) => {
    read = await readPieces(session, array, options, async (piece, at) => {
      // A write may take fewer bytes than given (a disk that filled up, a file size limit): the rest is
      // written again, and fails with the reason. Taken as whole, FILE was renamed into place cut short
      // and get said it read every byte.
      let written = 0;
      try {
        while (written < piece.length) {
          const { bytesWritten } = await file.write(piece, written, piece.length - written, at + written);
          if (bytesWritten === 0) throw new Error('the file took no more bytes');
          written += bytesWritten;
        }
      } catch (error) {
        throw new Error(`get cannot write ${path} after ${at + written} of ${array.byte_size} bytes: ${(error as Error).message}`);
      }
    });
    await file.sync();
    options.signal?.throwIfAborted();
  });
  return { array, bytes_read: read };
}

/**
 * `get --array ID -`: streams the array to stdout a piece at a time through `write` (stdoutWriter), each
 * written before the next is read. A pipe cannot be taken back, so a get that fails or is interrupted
 * midway has written the pieces before it: the exit status, not the bytes, says whether it is whole.
 */
export async function getToStream(
  client: TensormemClient,
  arrayId: string,
  write: WriteOut,
  options: { token?: string; progress?: NodeJS.WriteStream; signal?: AbortSignal },
): Promise<{ array: ArrayInfo; bytes_read: number }> {
  const { session, array } = await arrayToGet(client, arrayId, getToken(options.token));
  const read = await readPieces(session, array, options, async (piece, at) => {
    try {
      await write(piece);
    } catch (error) {
      const written = error instanceof StdoutWriteError ? error.written : 0;
      const reason = error instanceof StdoutWriteError ? error.reason : (error as Error).message;
      throw new Error(`get cannot write to stdout after ${at + written} of ${array.byte_size} bytes: ${reason}`);
    }
  });
  return { array, bytes_read: read };
}
