/**
 * The typed client's checks of the arguments that RequestChecks (request-checks.ts) does not see:
 * options that never reach a message (deadlines, timer lengths, chunk sizes) and what write/read take
 * for the streams and the data plane. Each refuses INVALID_ARGUMENT naming the field before anything is sent.
 */
import { status as Status } from '@grpc/grpc-js';
import { invalidArgument, TensormemClientError } from './client-errors';
import { shortened } from './request-checks';
import { varintLength } from '../service/proto-wire';

/** Offsets and lengths: a safe non-negative integer (grpc-js would turn anything else into 0 or wrap it). */
export function requireByteCount(field: string, value: number): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw invalidArgument(field, 'a non-negative safe integer', value);
}

/**
 * The client's address: any gRPC target grpc-js takes (HOST:PORT, unix:PATH, dns:, ipv4:, ...), but not a
 * URL or a bare socket path, which grpc-js read as DNS names and failed every call with "Name resolution
 * failed for target dns:http://…", naming neither form (a URL is the data plane's data_address or the status page's).
 */
export function checkClientAddress(address: unknown): void {
  const expected = 'tensormemd\'s gRPC address, HOST:PORT or unix:PATH as its "listening" log line names it';
  if (typeof address !== 'string') throw invalidArgument('address', expected, address);
  if (/^https?:\/\//i.test(address)) throw invalidArgument('address', `${expected} (not a URL: the data plane and the status page are HTTP, on other ports)`, address);
  if (address.startsWith('/')) throw invalidArgument('address', `${expected} (a socket path: unix:${address})`, address);
}

/** A timer length for grpc-js: a positive integer of ms that fits its 32-bit timers. */
export function positiveMs(field: string, value: number): number {
  if (!Number.isInteger(value) || value <= 0 || value > 2 ** 31 - 1) throw invalidArgument(field, 'a whole number of milliseconds from 1 to 2147483647', value);
  return value;
}

/** A timeout of the client's options that may be none: a number of ms above 0 (Infinity: none). */
export function requireTimeoutMs(field: string, value: unknown): void {
  if (!(typeof value === 'number' && value > 0)) throw invalidArgument(field, 'a number of milliseconds above 0 (Infinity: none)', value);
}

/**
 * A deadlineMs option: unset, or a number of ms from 0 (Infinity: none). A string ('5000') or NaN went
 * to grpc-js as a deadline it could not use, which failed the call with no gRPC code.
 */
export function checkDeadlineMs(value: unknown): void {
  if (value !== undefined && !(typeof value === 'number' && value >= 0)) throw invalidArgument('deadlineMs', 'a number of milliseconds from 0 (0 or Infinity: no deadline of its own)', value);
}

/**
 * A client-side option that no request message carries, so that RequestChecks never sees it: unset, or
 * a boolean (`releaseOnDisconnect: 'false'` armed the release; `writable: 'false'` mapped writable).
 */
export function optionalBoolean(field: string, value: unknown): void {
  if (value !== undefined && typeof value !== 'boolean') throw invalidArgument(field, 'true or false', value);
}

/** A callback: unset (when `optional`), or a function; one that is not threw out of a stream's event later, an uncaught exception. */
export function requireCallback(field: string, value: unknown, optional = true): void {
  if (!(typeof value === 'function' || (optional && value === undefined))) throw invalidArgument(field, optional ? 'a function, or none' : 'a function', value);
}

/** An options object a method needs (allocate's): an object, not undefined or another value. */
export function requireOptionsObject(field: string, value: unknown): void {
  if (value === null || typeof value !== 'object') throw invalidArgument(field, 'an object of options', value);
}

/** An array id given to write/read (streams and the data plane, which RequestChecks does not see): a string. */
export function requireArrayId(arrayId: unknown): void {
  if (typeof arrayId !== 'string') throw invalidArgument('array_id', 'a string (the array_id of an ArrayInfo)', shortened(arrayId));
}

/** write/writeGrpc arguments, checked before anything is sent. */
export function checkWrite(offset: number, chunkBytes: number, maxMessageBytes: number): void {
  requireByteCount('offset', offset);
  requireChunkBytes(chunkBytes, maxMessageBytes);
}

/**
 * A WriteArray chunk size (the client's option, or a write's argument): a positive safe integer whose
 * message fits `maxMessageBytes` (the client's; -1: no limit). grpc-js refused a larger one at the first
 * chunk with RESOURCE_EXHAUSTED "Attempted to send message with a size larger than N", naming neither.
 */
export function requireChunkBytes(chunkBytes: number, maxMessageBytes: number): void {
  if (typeof chunkBytes !== 'number' || !Number.isSafeInteger(chunkBytes) || chunkBytes < 1) throw invalidArgument('chunkBytes', 'a positive safe integer', chunkBytes);
  if (maxMessageBytes === -1 || chunkMessageBytes(chunkBytes) <= maxMessageBytes) return;
  const framing = chunkMessageBytes(chunkBytes) - chunkBytes;
  throw invalidArgument('chunkBytes', `a chunk size whose WriteArray message (the chunk and ${framing} bytes of framing) fits maxMessageBytes (${maxMessageBytes} bytes), at most ${largestChunkBytes(maxMessageBytes)}`, chunkBytes);
}

/** The size of a WriteArray message carrying `chunkBytes` bytes: field 2's tag (1 byte), the length as a varint, the bytes. */
export function chunkMessageBytes(chunkBytes: number): number {
  return 1 + varintLength(chunkBytes) + chunkBytes;
}

/** The largest chunk whose WriteArray message fits `maxMessageBytes` (at least 1). */
export function largestChunkBytes(maxMessageBytes: number): number {
  let chunkBytes = maxMessageBytes - 2;
  while (chunkBytes > 1 && chunkMessageBytes(chunkBytes) > maxMessageBytes) chunkBytes--;
  return Math.max(chunkBytes, 1);
}

/**
 * The bytes of what write() is given: any typed array or DataView (a Float32Array of weights), as the
 * bytes it spans. Chunks are cut by byte; cutting a Float32Array with subarray() counted elements, and
 * the protobuf writer took each element as one byte: 4 floats arrived as 4 garbled bytes, "written 4".
 */
export function bytesOf(data: ArrayBufferView): Uint8Array {
  if (data instanceof Uint8Array) return data;
  if (!ArrayBuffer.isView(data)) {
    const value = data as unknown;
    const received = Array.isArray(value) ? `an Array of ${value.length}` : value === null ? 'null' : typeof value === 'object' ? `a ${value.constructor?.name ?? 'plain object'}` : typeof value;
    throw new TensormemClientError(Status.INVALID_ARGUMENT, 'INVALID_ARGUMENT', `Expected a Uint8Array, Buffer, other typed array or DataView for data but received ${received}`, { field: 'data' });
  }
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}
