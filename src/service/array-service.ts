/** tensormem.v1.ArrayService: validation and streaming; the memory work is in src/leases and src/memory. */
import type { Metadata, Server, ServerReadableStream, ServerUnaryCall, ServerWritableStream, sendUnaryData, ServerErrorResponse } from '@grpc/grpc-js';
import type { WaitHandle } from '../memory/memory-wait-queue';
import { constants, type ServerHttp2Stream } from 'node:http2';
import { checksumMismatch, crc32c, crc32cImplementation } from '../crc32c';
import { describeCount, invalidArgument, outOfRange } from '../errors';
import { exportArray } from '../memory/array-export';
import type { Lease } from '../leases/lease';
import type { TensorArray } from '../memory/tensor-array';
import type { ArrayServiceHandlers } from '../generated/tensormem/v1/ArrayService';
import type { ArrayInfo } from '../generated/tensormem/v1/ArrayInfo';
import type { WriteArrayRequest__Output } from '../generated/tensormem/v1/WriteArrayRequest';
import type { WriteArrayResponse } from '../generated/tensormem/v1/WriteArrayResponse';
import { BULK_STREAM_BYTES } from '../heap-growth';
import { MESSAGE_FRAMING_HEADROOM_BYTES } from '../config/config';
import type { ReadArrayRequest__Output } from '../generated/tensormem/v1/ReadArrayRequest';
import type { ReadArrayResponse } from '../generated/tensormem/v1/ReadArrayResponse';
import { ChunkRing } from './chunk-ring';
import { READ_MESSAGE_HEADROOM, readArrayResponseIn } from './read-array-messages';
import { ReadBudget } from './read-budget';
import { toServiceError } from './errors';
import { bearerToken, timestamp, unary } from './handlers';
import { loadTensormemProto } from './proto';
import { pageStart, pageTokenOf } from './page-tokens';
import { requireWellFormed, tolerantDeserializers } from './malformed';
import { ServiceContext, refuseWhileDraining, shuttingDownError } from './service-context';

const MAX_LABEL_LENGTH = 256;

/** An array's label (AllocateArray, DuplicateArray): it shows in every snapshot, so its size is bounded. */
function checkLabel(label: string): void {
  if (label.length > MAX_LABEL_LENGTH) throw invalidArgument('label', `at most ${MAX_LABEL_LENGTH} characters`, `${label.length} characters`);
}

/**
 * AllocateArray's request_id (a UUID is 36 characters). The lease keeps it for as long as the array
 * lives: unbounded, a 1-byte array with a 60 MB request_id took 60 MB of the daemon's heap (40 of
 * them: 2.6 GB of RSS), and a refusal that quotes it made a status too large for its trailers.
 */
export const MAX_REQUEST_ID_LENGTH = 256;

function checkRequestId(requestId: string): void {
  if (requestId.length > MAX_REQUEST_ID_LENGTH) throw invalidArgument('request_id', `at most ${MAX_REQUEST_ID_LENGTH} characters`, `${requestId.length} characters`);
}

export function arrayInfo(array: TensorArray): ArrayInfo {
  return {
    array_id: array.arrayId,
    lease_id: array.leaseId,
    data_type: array.dataType,
    shape: array.shape,
    byte_size: array.byteSize,
    placement: array.placement,
    device: array.placement === 'PLACEMENT_DEVICE' ? array.device : 0,
    workspace_id: array.workspace?.workspaceId ?? '',
    attached: array.workspace !== undefined,
    generation: array.generation,
    host_valid: array.hostValid,
    device_valid: array.deviceValid,
    label: array.label,
    has_host_mirror: array.placement === 'PLACEMENT_DEVICE' && array.hostBlock !== undefined,
    created_at: timestamp(array.createdAt),
    held_bytes: array.heldBytes,
    host_exportable: array.hostExportable,
    device_exportable: array.deviceExportable,
  };
}

/**
 * The most bytes an array's ArrayInfo takes in a reply: about 130 bytes fixed (two ids, the
 * numbers, the flags, created_at, the workspace id), up to 3 a label character (UTF-8) and 11 a
 * dimension (a varint of an int64 and its share of the packed field).
 */
function arrayInfoBytesAtMost(array: TensorArray): number {
  return 256 + 3 * array.label.length + 11 * array.rank;
}

export class ArrayService {
  /** The chunk rings of each tenant's ReadArray streams: at most READ_BUDGET_RINGS full rings at once (src/service/read-budget.ts). */
  private readonly readBudget: ReadBudget;

  constructor(private readonly context: ServiceContext) {
    this.readBudget = new ReadBudget(READ_BUDGET_RINGS * READ_RING * context.config.chunkBytes);
    // Chosen now: a TENSORMEM_CRC32C that is not one of its values stops the start, not the first checked WriteArray.
    crc32cImplementation();
  }

  private lease(metadata: Metadata): Lease {
    return this.context.registry.authenticate(bearerToken(metadata));
  }

  /**
   * How long a wait_for_memory call may wait: until its deadline, at most --max-wait; cancelled with the
   * call. Any length works: the wait queue arms waits beyond setTimeout's 2^31 - 1 ms in steps.
   */
  private waitFor(call: ServerUnaryCall<unknown, unknown>): { readonly waitMs: number; onHandle: (handle: WaitHandle) => void } {
    const deadline = call.getDeadline();
    const deadlineMs = deadline instanceof Date ? deadline.getTime() : Number(deadline);
    const { maxWaitMs } = this.context.config;
    return {
      // Read when the wait begins, which for a request_id retry can be well after the call came (it
      // first awaits the first call): the time left to the call's deadline then.
      get waitMs() {
        return Math.min(maxWaitMs, Number.isFinite(deadlineMs) ? Math.max(0, deadlineMs - Date.now()) : Infinity);
      },
      // A call whose caller is gone already (a retry that awaited the first call meanwhile) waits for nothing.
      onHandle: (handle) => {
        if (call.cancelled) handle.cancel();
        else call.once('cancelled', () => handle.cancel());
      },
    };
  }

  addToServer(server: Server): void {
    const { proto } = loadTensormemProto();
    const { registry, log } = this.context;
    const handlers: ArrayServiceHandlers = {
      AllocateArray: unary(log, async (call) => {
        refuseWhileDraining(this.context);
        const request = call.request;
        const lease = registry.resolve(this.lease(call.metadata), request.lease_id);
        checkLabel(request.label);
        checkRequestId(request.request_id);
        const array = await lease.allocateArray({
          dataType: request.data_type,
          shape: request.shape,
          placement: request.placement,
          device: request.device,
          workspaceId: request.workspace_id,
          zero: request.zero,
          label: request.label,
          requestId: request.request_id,
          waitForMemory: request.wait_for_memory ? this.waitFor(call) : undefined,
          exportable: request.exportable,
        });
        return { array: arrayInfo(array) };
      }),
      GetArray: unary(log, (call) => ({ array: arrayInfo(this.lease(call.metadata).getArray(call.request.array_id)), data_address: this.context.dataAddress ?? '' })),
      ListArrays: unary(log, (call) => {
        const request = call.request;
        const lease = registry.resolve(this.lease(call.metadata), request.lease_id);
        const listing = { rpc: 'ListArrays', key: `l:${lease.leaseId}`, name: `lease ${lease.leaseId}'s arrays` };
        const budget = { bytesOf: arrayInfoBytesAtMost, maxBytes: this.context.config.maxMessageBytes - MESSAGE_FRAMING_HEADROOM_BYTES };
        const page = lease.arrayPage(pageStart(request.page_token, listing), request.page_size, budget);
        return { arrays: page.arrays.map(arrayInfo), next_page_token: page.nextAfterSerial === undefined ? '' : pageTokenOf(page.nextAfterSerial, listing), total_count: page.total };
      }),
      FreeArray: unary(log, (call) => ({ freed_bytes: this.lease(call.metadata).freeArray(call.request.array_id) })),
      DuplicateArray: unary(log, async (call) => {
        const request = call.request;
        const lease = this.lease(call.metadata);
        checkLabel(request.label);
        const copy = await lease.duplicateArray(request.array_id, request.placement, request.workspace_id, request.label, request.detached);
        return { array: arrayInfo(copy) };
      }),
      SyncArray: unary(log, async (call) => {
        const array = this.lease(call.metadata).getArray(call.request.array_id);
        if (call.request.direction === 'SYNC_DIRECTION_TO_HOST') await array.syncToHost();
        else if (call.request.direction === 'SYNC_DIRECTION_TO_DEVICE') await array.syncToDevice();
        else throw invalidArgument('direction', 'SYNC_DIRECTION_TO_HOST or SYNC_DIRECTION_TO_DEVICE', call.request.direction);
        // The lease ended during the copy (freeing the array with it): answer as its token now gets.
        const ended = array.leaseEndedError();
        if (ended) throw ended;
        return { array: arrayInfo(array) };
      }),
      ExportArray: unary(log, async (call) => {
        const array = this.lease(call.metadata).getArray(call.request.array_id);
        const exported = await exportArray(array, call.request.side, this.context.memory);
        const region = { offset: exported.offset, length: exported.length, region_bytes: exported.regionBytes };
        const handle = exported.kind === 'shm' ? { shm: { name: exported.name, ...region } } : { cuda_ipc: { handle: exported.handle, device: exported.device, ...region } };
        return { ...handle, array: arrayInfo(array), moved: exported.moved };
      }),
      WriteArray: (call, callback) => {
        this.writeArray(call, callback).catch((error) => {
          // The client went away mid-stream (its process died, its connection dropped): grpc-js cancels the
          // call and destroys the stream without an end, so reading it fails with ERR_STREAM_PREMATURE_CLOSE.
          // No one is left to answer, and it is no internal error.
          if (call.cancelled) {
            log.debug({ event: 'write_array_aborted', error: (error as Error)?.message }, 'WriteArray: the client went away mid-stream');
            return;
          }
          callback(toServiceError(error, log) as ServerErrorResponse);
        });
      },
      ReadArray: (call) => {
        this.readArray(call).catch((error) => {
          if (!call.cancelled) call.emit('error', toServiceError(error, log));
        });
      },
    };
    server.addService(tolerantDeserializers(proto.tensormem.v1.ArrayService.service), handlers);
  }

  /**
   * Header first, then chunks written in order. Each chunk is checked against the array's end before
   * any byte of it is written; bytes_written is reported only when the whole stream succeeded. With a
   * header.crc32c, the chunks' CRC-32C is computed as they arrive and checked once the stream ends (the
   * data plane's CHECKSUM_MISMATCH), the chunks written as they came, as a PUT's body is.
   */
  private async writeArray(call: ServerReadableStream<WriteArrayRequest__Output, WriteArrayResponse>, callback: sendUnaryData<WriteArrayResponse>): Promise<void> {
    const lease = this.lease(call.metadata);
    let array: TensorArray | undefined;
    let start = 0;
    let position = 0;
    let written = 0;
    let expectedCrc: number | undefined;
    let crc = 0;
    let endBulk: (() => void) | undefined;
    try {
      for await (const message of call as AsyncIterable<WriteArrayRequest__Output>) {
        requireWellFormed(message);
        if (message.payload === 'header') {
          if (array) throw invalidArgument('header', 'one header, as the first message', 'a second header');
          array = lease.getArray(message.header!.array_id);
          start = position = message.header!.offset;
          expectedCrc = message.header!.crc32c;
          if (position > array.byteSize) throw outOfRange('header.offset', `offset ${describeCount(position)} is past the end of array ${array.arrayId} (${array.byteSize} bytes)`);
        } else if (message.payload === 'chunk') {
          if (!array) throw invalidArgument('payload', 'a header as the first message', 'a chunk');
          const chunk = message.chunk!;
          if (position + chunk.byteLength > array.byteSize) {
            throw outOfRange('chunk', `${chunk.byteLength} bytes at offset ${position} pass the end of array ${array.arrayId} (${array.byteSize} bytes)`);
          }
          if (expectedCrc !== undefined) crc = crc32c(chunk, crc);
          await array.write(position, chunk);
          position += chunk.byteLength;
          written += chunk.byteLength;
          this.context.transfers?.add('grpc', 'write', chunk.byteLength);
          if (written >= BULK_STREAM_BYTES) endBulk ??= this.context.heapGrowth?.beginBulkStream();
        } else {
          throw invalidArgument('payload', 'a header or a chunk', '(empty message)');
        }
      }
    } finally {
      endBulk?.();
    }
    if (!array) throw invalidArgument('header', 'a header message', '(empty stream)');
    if (expectedCrc !== undefined && crc !== expectedCrc) throw checksumMismatch('header.crc32c', start, written, expectedCrc, crc, "a stream's chunks are never staged");
    callback(null, { bytes_written: written });
  }

  private async readArray(call: ServerWritableStream<ReadArrayRequest__Output, ReadArrayResponse>): Promise<void> {
    const request = call.request;
    requireWellFormed(request);
    const lease = this.lease(call.metadata);
    const array = lease.getArray(request.array_id);
    const offset = request.offset;
    if (offset > array.byteSize) throw outOfRange('offset', `offset ${describeCount(offset)} is past the end of array ${array.arrayId} (${array.byteSize} bytes)`);
    const length = request.length === 0 ? array.byteSize - offset : request.length;
    array.checkRange(offset, length, 'length');
    const chunkBytes = Math.min(this.context.config.chunkBytes, Math.max(length, 1));
    const ringSize = length <= chunkBytes ? 1 : READ_RING;
    // The stream ends when its lease does (its arrays are freed: there is nothing more to send) and,
    // while it waits for the budget, when the daemon drains (as an allocation waiting for memory does).
    // `wake` stops whatever it is waiting for: the budget, a buffer of the ring, or the client's reading.
    let endedBy: Error | undefined;
    let wake = () => {};
    const end = (error: Error) => {
      if (endedBy !== undefined || gone(call)) return;
      endedBy = error;
      wake();
    };
    const forgetLease = lease.whenClosed(() => end(lease.closedError()));
    const onDrain = () => end(shuttingDownError());
    // The ring stays in the daemon while the client does not read: the tenant's streams share a
    // budget of rings, and this one waits (holding nothing) until it fits.
    const releaseBudget = await this.readBudget.acquire(lease.tenant, ringSize * chunkBytes, (listener) => {
      wake = listener;
      if (this.context.stopping.aborted) end(shuttingDownError());
      else this.context.stopping.addEventListener('abort', onDrain, { once: true });
      if (gone(call) || endedBy !== undefined) listener();
      else call.once('cancelled', listener);
    });
    this.context.stopping.removeEventListener('abort', onDrain);
    if (!releaseBudget) {
      forgetLease();
      if (endedBy !== undefined && !gone(call)) throw endedBy;
      return;
    }
    // Each buffer comes back once grpc-js has taken (serialized) the message that used it.
    const ring = new ChunkRing(ringSize, READ_MESSAGE_HEADROOM + chunkBytes);
    call.once('cancelled', () => ring.abandon());
    let stopWaiting = () => {};
    const stopped = new Promise<void>((resolve) => (stopWaiting = resolve));
    wake = () => {
      ring.abandon();
      stopWaiting();
    };
    if (endedBy !== undefined) wake();
    const endBulk = length >= BULK_STREAM_BYTES ? this.context.heapGrowth?.beginBulkStream() : undefined;
    try {
      for (let position = offset; position < offset + length && !gone(call) && endedBy === undefined; ) {
        const buffer = await ring.take();
        if (!buffer || gone(call)) break;
        const data = buffer.subarray(READ_MESSAGE_HEADROOM, READ_MESSAGE_HEADROOM + Math.min(chunkBytes, offset + length - position));
        await array.read(position, data);
        // The client may have cancelled during the copy: a write to the destroyed stream returns false
        // and neither 'drain' nor 'cancelled' (already emitted) would ever come.
        if (gone(call)) break;
        // The message is the chunk's own bytes (read-array-messages.ts): no copy into protobufjs's Buffer.
        const flowing = call.write(readArrayResponseIn(buffer, position, data.byteLength) as unknown as ReadArrayResponse, () => ring.give(buffer));
        this.context.transfers?.add('grpc', 'read', data.byteLength);
        if (!flowing) await Promise.race([drainedOrCancelled(call), stopped]);
        position += data.byteLength;
      }
    } finally {
      endBulk?.();
      forgetLease();
      if (endedBy !== undefined && !gone(call)) releaseWhenSent(call, releaseBudget);
      else releaseBudget();
    }
    if (endedBy !== undefined) {
      if (!gone(call)) throw endedBy;
      return;
    }
    if (!gone(call)) call.end();
  }
}

/**
 * How long a ReadArray stream whose lease ended may take to send what it had written and its status
 * (LEASE_EXPIRED) before it is reset: a client that reads gets them at once; one that does not would
 * otherwise keep the messages in the daemon, and its tenant's ReadArray budget, for as long as its
 * connection lasts.
 */
export const ENDED_READ_GRACE_MS = 5000;

/**
 * Gives the budget of a ReadArray stream whose lease ended back once the stream has sent everything
 * (or the client went away), and resets the stream (RST_STREAM CANCEL) if that has not happened
 * within ENDED_READ_GRACE_MS.
 */
function releaseWhenSent(call: ServerWritableStream<ReadArrayRequest__Output, ReadArrayResponse>, release: () => void): void {
  const timer = setTimeout(() => {
    const stream = http2StreamOf(call);
    if (stream) {
      stream.on('error', () => undefined);
      stream.close(constants.NGHTTP2_CANCEL);
    } else done();
  }, ENDED_READ_GRACE_MS);
  timer.unref();
  const done = () => {
    clearTimeout(timer);
    release();
  };
  call.once('finish', done);
  call.once('cancelled', done);
  call.once('close', done);
}

/**
 * The HTTP/2 stream under a grpc-js server call: grpc-js does not expose it; its call wraps the
 * interceptors' calls (`nextCall`), the innermost of which holds the stream. Undefined should another
 * grpc-js keep it elsewhere.
 */
function http2StreamOf(call: object): ServerHttp2Stream | undefined {
  let inner = (call as { call?: unknown }).call as { stream?: unknown; nextCall?: unknown } | undefined;
  for (let depth = 0; depth < 32 && inner !== undefined && inner !== null; depth++) {
    const stream = inner.stream as ServerHttp2Stream | undefined;
    if (stream && typeof stream.close === 'function' && 'session' in stream) return stream;
    inner = inner.nextCall as typeof inner;
  }
  return undefined;
}

/** Chunk buffers in flight in one ReadArray call. */
const READ_RING = 3;
/**
 * How many full rings (READ_RING × --chunk-bytes) one tenant's ReadArray streams hold at once, all its
 * leases together; more streams wait their turn. Eight keep a tenant's concurrent readers busy (one
 * stream already reaches B3's yardstick) while bounding what its stalled readers keep in the daemon.
 */
export const READ_BUDGET_RINGS = 8;

/** Whether the client went away (cancelled, or the stream was destroyed): nothing more will be sent or drained. */
function gone(call: ServerWritableStream<ReadArrayRequest__Output, ReadArrayResponse>): boolean {
  return call.cancelled || call.destroyed;
}

/**
 * Waits for the stream to accept more data, or for the client to go away. Resolves at once when it
 * is already gone: 'cancelled' and 'close' fire once, and may have fired before this call.
 */
function drainedOrCancelled(call: ServerWritableStream<ReadArrayRequest__Output, ReadArrayResponse>): Promise<void> {
  if (gone(call) || !call.writableNeedDrain) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      call.off('drain', done);
      call.off('cancelled', done);
      call.off('close', done);
      resolve();
    };
    call.once('drain', done);
    call.once('cancelled', done);
    call.once('close', done);
  });
}
