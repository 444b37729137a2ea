/**
 * LeaseSession: one lease of the typed client and the calls made with its token (arrays, transfers
 * over gRPC or the HTTP data plane, exports, workspaces, renewal and keep-alive, close).
 */
import { constants as bufferConstants } from 'node:buffer';
import { constants as osConstants } from 'node:os';
import { Metadata, ServiceError, status as Status } from '@grpc/grpc-js';
import type { Lease__Output } from '../generated/tensormem/v1/Lease';
import type { ArrayInfo__Output } from '../generated/tensormem/v1/ArrayInfo';
import type { WorkspaceInfo__Output } from '../generated/tensormem/v1/WorkspaceInfo';
import type { WorkspaceConfig } from '../generated/tensormem/v1/WorkspaceConfig';
import type { ExportArrayResponse__Output } from '../generated/tensormem/v1/ExportArrayResponse';
import type { AcquireCudnnWorkspaceRequest } from '../generated/tensormem/v1/AcquireCudnnWorkspaceRequest';
import type { AcquireCudnnWorkspaceResponse__Output } from '../generated/tensormem/v1/AcquireCudnnWorkspaceResponse';
import {
  DataPlaneConnectionError,
  DataPlaneDeadlineError,
  DataPlaneEndpoint,
  DataPlaneHttpError,
  DataPlaneTransferError,
  describe as describeEndpoint,
  DestinationTooSmallError,
  getArray as httpGetArray,
  putArray as httpPutArray,
} from '../dataplane/data-plane-client';
import { isNativeError } from '../native/backend';
import { crc32c } from '../crc32c';
import { MAX_TIMER_MS } from '../long-timeout';
import { clientError, clientErrorOfHttp, outOfRange, TensormemClientError } from './client-errors';
import { bytesOf, checkDeadlineMs, checkWrite, optionalBoolean, positiveMs, requireArrayId, requireByteCount, requireCallback, requireOptionsObject } from './argument-checks';
import { abortable, call, Callback, deadlineIn } from './unary-call';
import { AllocateOptions, checkOptionNames, DATA_PLANE_RETRY_FIRST_MS, DATA_PLANE_RETRY_MAX_MS, DuplicateOptions, ExportOptions, KeepAliveOptions, LIST_ARRAYS_PAGE_SIZE, WriteOptions } from './client-options';
import { keepLeaseAlive } from './lease-keep-alive';
import type { TensormemClient } from './tensormem-client';

/** AcquireCudnnWorkspace's request without lease_id (the session's lease); unset fields take the proto defaults. */
export type CudnnWorkspaceRequest = Omit<AcquireCudnnWorkspaceRequest, 'lease_id'>;

/** What exportArray gives: the daemon's handle and, for shared memory, the array's bytes mapped here. */
export interface ArrayExport {
  array: ArrayInfo__Output;
  /** Whether this export moved the side's bytes out of a pool block into a region of their own (a copy, made once); false for a device array's first mirror, made there. */
  moved: boolean;
  shm?: { name: string; offset: number; length: number; regionBytes: number };
  /** shm: the array's bytes, a view of this process's mapping (no copy); writable when asked. */
  bytes?: Buffer;
  /** Device side on the cuda backend: pass to cudaIpcOpenMemHandle in a CUDA program. */
  cudaIpc?: { handle: Buffer; device: number; offset: number; length: number; regionBytes: number };
}

/** Longest a read cut short on the data plane waits for the daemon's first byte of the rest, or to say why not (LeaseSession.finishCutRead). */
const READ_CUT_PROBE_MS = 5000;

/** A lease and the calls made with its token. */
export class LeaseSession {
  readonly leaseId: string;
  readonly token: string;
  /** Array transfers (write/read calls) done over each transport. */
  readonly transfers = { http: 0, grpc: 0 };
  /**
   * Byte sizes of the arrays this session has seen, to choose a transport for reads to the end and to
   * check read ranges. Arrays in a workspace are not kept (the daemon retires them without a FreeArray
   * from here), and the map holds at most MAX_REMEMBERED_ARRAYS (the oldest go first).
   */
  private readonly arraySizes = new Map<string, number>();
  static readonly MAX_REMEMBERED_ARRAYS = 4096;
  /**
   * The most bytes one read() or readGrpc() returns: the largest Buffer this Node.js makes
   * (buffer.constants.MAX_LENGTH: 4 GiB on Node.js 20, 2^53 - 1 on 22 and later, where the memory for
   * the Buffer is the limit). A larger read is RESOURCE_EXHAUSTED; read such an
   * array in ranges.
   */
  static maxReadBytes: number = bufferConstants.MAX_LENGTH;

  private endpoint: DataPlaneEndpoint | undefined;
  /**
   * Until this time (ms since the epoch, like Date.now()) large transfers go over gRPC without trying
   * the data plane: set by a data plane connection failure, DATA_PLANE_RETRY_FIRST_MS ahead and twice
   * as far with each failure in a row (at most DATA_PLANE_RETRY_MAX_MS); 0 when the data plane is in use.
   */
  dataPlaneRetryAt = 0;
  /**
   * @internal Set for a session made from a lease token alone (TensormemClient.sessionOf), which no
   * OpenLease answer told where the data plane is: the first get() answer that names one sets dataPlane.
   */
  learnsDataPlane = false;
  private dataPlaneBackoffMs = 0;
  /**
   * Data plane failures so far and changes of the endpoint (the dataPlane setter): transfers under way
   * together when the data plane fails count once, one begun before a failure that completes after it
   * does not reset the backoff, and one to an endpoint since replaced does neither.
   */
  private dataPlaneEpoch = 0;
  /** What renew() waits for: keepAliveStopping. */
  private keepAliveSettled: Promise<void> = Promise.resolve();

  constructor(
    readonly client: TensormemClient,
    public lease: Lease__Output,
    dataPlane?: DataPlaneEndpoint,
  ) {
    this.leaseId = lease.lease_id;
    this.token = lease.token;
    this.endpoint = dataPlane;
  }

  /**
   * The HTTP data plane, when the daemon has one this client can use (skipped until dataPlaneRetryAt
   * after a connection failure). Setting it (the data plane moved) tries the new one at the next transfer;
   * transfers still under way to the one it replaced neither set nor reset the backoff when they end.
   */
  get dataPlane(): DataPlaneEndpoint | undefined {
    return this.endpoint;
  }

  set dataPlane(endpoint: DataPlaneEndpoint | undefined) {
    this.endpoint = endpoint;
    this.dataPlaneEpoch++;
    this.dataPlaneWorks();
  }

  private dataPlaneWorks(): void {
    this.dataPlaneRetryAt = 0;
    this.dataPlaneBackoffMs = 0;
  }

  /** A transfer begun at `epochBefore` could not use the data plane: gRPC until the backoff ends (unless a failure or a new endpoint came since). */
  private dataPlaneFailed(epochBefore: number): void {
    if (this.dataPlaneEpoch !== epochBefore) return;
    this.dataPlaneEpoch++;
    this.dataPlaneBackoffMs = Math.min(this.dataPlaneBackoffMs * 2 || DATA_PLANE_RETRY_FIRST_MS, DATA_PLANE_RETRY_MAX_MS);
    this.dataPlaneRetryAt = Date.now() + this.dataPlaneBackoffMs;
  }

  private remember(array: ArrayInfo__Output): ArrayInfo__Output {
    if (array.workspace_id) return array;
    this.arraySizes.delete(array.array_id);
    this.arraySizes.set(array.array_id, Number(array.byte_size));
    if (this.arraySizes.size > LeaseSession.MAX_REMEMBERED_ARRAYS) this.arraySizes.delete(this.arraySizes.keys().next().value!);
    return array;
  }

  /** The data plane for a transfer of `bytes`, or undefined for gRPC (0-byte transfers always use gRPC, and all transfers until dataPlaneRetryAt). */
  private httpFor(bytes: number | undefined): DataPlaneEndpoint | undefined {
    const use = this.endpoint && bytes !== undefined && bytes > 0 && bytes >= this.client.dataPlaneThresholdBytes && Date.now() >= this.dataPlaneRetryAt;
    return use ? this.endpoint : undefined;
  }

  /**
   * Runs `transfer` over the data plane; HTTP errors become TensormemClientErrors; a failed connection
   * (or an answer that is not the daemon's) gives undefined (use gRPC) and keeps this session off the
   * data plane until dataPlaneRetryAt; a connection refused for
   * the daemon's --data-max-connections (503 TOO_MANY_CONNECTIONS, sent before the request was read)
   * gives undefined for this transfer only. A passed deadline is
   * DEADLINE_EXCEEDED and a failure after the answer began (reset, truncated, stalled) UNAVAILABLE, neither retried;
   * `afterCut` may name a better error for the latter, or finish the transfer another way (read). A
   * stall sets the backoff too.
   */
  private async overHttp<T>(transfer: () => Promise<T>, afterCut?: (cut: DataPlaneTransferError) => Promise<TensormemClientError | { done: T } | undefined>): Promise<T | undefined> {
    const epochBefore = this.dataPlaneEpoch;
    // The daemon answered: the data plane works, unless it failed (or moved) since this transfer began
    // (one under way on a connection made before the failure says nothing of new connections).
    const answered = () => this.dataPlaneEpoch === epochBefore && this.dataPlaneWorks();
    try {
      const done = await transfer();
      answered();
      return done;
    } catch (error) {
      if (error instanceof DataPlaneHttpError) {
        if (error.body.reason === 'TOO_MANY_CONNECTIONS') return undefined;
        answered();
        throw clientErrorOfHttp(error);
      }
      if (error instanceof DataPlaneDeadlineError) throw new TensormemClientError(Status.DEADLINE_EXCEEDED, undefined, error.message, {});
      if (error instanceof DataPlaneTransferError) {
        // A connection that moved no byte for stallTimeoutMs is a data plane that does not work now,
        // whether or not the answer had begun: later transfers skip it for the backoff.
        if (error.stalled) this.dataPlaneFailed(epochBefore);
        const after = await afterCut?.(error);
        if (after !== undefined && !(after instanceof TensormemClientError)) return after.done;
        throw after ?? new TensormemClientError(Status.UNAVAILABLE, undefined, error.message, {});
      }
      if (error instanceof DataPlaneConnectionError) {
        this.dataPlaneFailed(epochBefore);
        return undefined;
      }
      throw error;
    }
  }

  private get md(): Metadata {
    return this.client.metadata(this.token);
  }

  async allocate(options: AllocateOptions): Promise<ArrayInfo__Output> {
    requireOptionsObject('allocate options', options);
    checkOptionNames('allocate', options);
    checkDeadlineMs(options.deadlineMs);
    const response = await abortable<{ array: ArrayInfo__Output | null }>('allocate', options.signal, (cb) =>
      this.client.arrays.AllocateArray(
        {
          lease_id: this.leaseId,
          data_type: options.dataType,
          shape: options.shape,
          placement: options.placement ?? 'PLACEMENT_DEVICE',
          device: options.device ?? 0,
          workspace_id: options.workspaceId ?? '',
          zero: options.zero ?? false,
          label: options.label ?? '',
          request_id: options.requestId ?? '',
          wait_for_memory: options.waitForMemory ?? false,
          exportable: options.exportable ?? false,
        },
        this.md,
        options.deadlineMs ? deadlineIn(options.deadlineMs) : this.client.callOptions(),
        cb,
      ),
    );
    return this.remember(response.array!);
  }

  /**
   * Writes `data` at `offset`; resolves to bytes_written. Large writes go over the HTTP data plane
   * when there is one (see ClientOptions.dataPlane), the others over one WriteArray stream in chunks.
   * options.checksum: the write carries its CRC-32C, checked by the daemon, whichever way it goes.
   */
  async write(arrayId: string, view: ArrayBufferView, offset = 0, chunkBytes = this.client.chunkBytes, options: WriteOptions = {}): Promise<number> {
    requireArrayId(arrayId);
    checkWriteOptions(options);
    const data = bytesOf(view);
    checkWrite(offset, chunkBytes, this.client.maxMessageBytes);
    this.client.requireOpen();
    this.checkWriteRange(arrayId, offset, data.byteLength);
    // One deadline for the whole transfer, the fallback to gRPC included.
    const callOptions = this.client.callOptions();
    return this.sendingFrom(data, async () => {
      const http = this.httpFor(data.byteLength);
      const cut: { put?: DataPlaneConnectionError } = {};
      if (http) {
        const written = await this.overHttp(() =>
          httpPutArray(http, this.token, arrayId, data, offset, { ...this.client.dataPlaneTransferOptions(callOptions), checksum: options.checksum }).catch((error: unknown) => {
            if (error instanceof DataPlaneConnectionError && error.bodyBytesSent > 0) cut.put = error;
            throw error;
          }),
        );
        if (written !== undefined) {
          this.transfers.http++;
          return written;
        }
      }
      this.transfers.grpc++;
      try {
        return await this.writeOverGrpc(arrayId, data, offset, chunkBytes, callOptions, options.checksum);
      } catch (error) {
        throw cut.put ? afterCutPut(error, cut.put, arrayId, offset) : error;
      }
    });
  }

  /** Writes `data` at `offset` over one WriteArray stream in chunks, whatever its size; options as write's. */
  async writeGrpc(arrayId: string, view: ArrayBufferView, offset = 0, chunkBytes = this.client.chunkBytes, options: WriteOptions = {}): Promise<number> {
    requireArrayId(arrayId);
    checkWriteOptions(options);
    const data = bytesOf(view);
    checkWrite(offset, chunkBytes, this.client.maxMessageBytes);
    this.checkWriteRange(arrayId, offset, data.byteLength);
    return this.sendingFrom(data, () => this.writeOverGrpc(arrayId, data, offset, chunkBytes, this.client.callOptions(), options.checksum));
  }

  /**
   * Runs `send`, a write that sends `data`; when `data` lies in an exported array's mapping, the mapping
   * stays mapped until the write ends, whatever is freed or closed meanwhile.
   */
  private async sendingFrom<T>(data: Uint8Array, send: () => Promise<T>): Promise<T> {
    const release = this.client.mappings.hold(data.buffer);
    try {
      return await send();
    } finally {
      release?.();
    }
  }

  /**
   * Refuses a write that passes the end of an array whose size this session knows, before anything is
   * sent. A WriteArray stream is refused only at the chunk that passes the end, after the chunks before
   * it were written: 2 MiB at offset 2 MiB of a 3 MiB array changed its last MiB and then failed
   * OUT_OF_RANGE (the data plane checks Content-Range first and changed nothing).
   */
  private checkWriteRange(arrayId: string, offset: number, bytes: number): void {
    const size = this.arraySizes.get(arrayId);
    if (size === undefined || bytes === 0 || offset + bytes <= size) return;
    if (offset >= size) throw outOfRange('offset', `offset ${offset} is at or past the end of array ${arrayId} (${size} bytes): no byte of the ${bytes} bytes of data fits`);
    throw outOfRange('data', `${bytes} bytes at offset ${offset} pass the end of array ${arrayId} (${size} bytes)`);
  }

  /** `checksum`: the header carries the CRC-32C of `data` (WriteArrayHeader.crc32c), which the daemon checks once the stream ends. */
  private async writeOverGrpc(arrayId: string, data: Uint8Array, offset: number, chunkBytes: number, callOptions: { deadline?: number }, checksum?: boolean): Promise<number> {
    const header = checksum ? { array_id: arrayId, offset, crc32c: crc32c(data) } : { array_id: arrayId, offset };
    const response = await new Promise<{ bytes_written: number }>((resolve, reject) => {
      const stream = this.client.arrays.WriteArray(this.md, callOptions, (error, value) => (error ? reject(clientError(error)) : resolve(value as { bytes_written: number })));
      const pump = async () => {
        stream.write({ header });
        for (let position = 0; position < data.byteLength; position += chunkBytes) {
          const chunk = data.subarray(position, Math.min(position + chunkBytes, data.byteLength));
          if (!stream.write({ chunk })) await new Promise((drained) => stream.once('drain', drained));
        }
        stream.end();
      };
      pump().catch(reject);
    });
    return response.bytes_written;
  }

  /**
   * Reads [offset, offset + length) (length 0: to the end) into one Buffer: over the HTTP data plane
   * when it is large (a read to the end counts as large when this session knows the array's size), else
   * over a ReadArray stream. A data plane answer whose connection ends mid-body (the daemon's data
   * listener restarted, a proxy closed it) or stalls is finished over ReadArray from the first byte it
   * lacks, into the same Buffer, when the array still reads (finishCutRead); such a read counts under
   * transfers.grpc.
   */
  async read(arrayId: string, offset = 0, length = 0): Promise<Buffer> {
    requireArrayId(arrayId);
    requireByteCount('offset', offset);
    requireByteCount('length', length);
    this.client.requireOpen();
    const size = this.arraySizes.get(arrayId);
    if (size !== undefined) {
      // What ReadArray would answer, without the round trip.
      if (offset > size) throw outOfRange('offset', `offset ${offset} is past the end of array ${arrayId} (${size} bytes)`);
      if (offset + length > size) throw outOfRange('length', `${length} bytes at offset ${offset} pass the end of array ${arrayId} (${size} bytes)`);
    }
    const expected = this.expectedReadBytes(arrayId, offset, length);
    if (expected !== undefined) checkReadSize(arrayId, expected);
    // One deadline for the whole transfer, the fallback to gRPC included.
    const callOptions = this.client.callOptions();
    const http = this.httpFor(expected);
    if (!http) {
      this.transfers.grpc++;
      return this.readOverGrpc(arrayId, offset, length, callOptions, expected);
    }
    // httpFor gave the data plane, so the answer's size is known: one Buffer for it, whichever way it comes.
    const into = answerBuffer(arrayId, expected!);
    let resumed = false;
    const data = await this.overHttp(
      () => this.getInto(http, arrayId, offset, length, into, callOptions),
      async (cut) => {
        const finished = await this.finishCutRead(arrayId, offset, into, cut, callOptions);
        resumed = finished === into;
        return finished instanceof TensormemClientError ? finished : finished && { done: finished };
      },
    );
    if (data !== undefined) {
      this.transfers[resumed ? 'grpc' : 'http']++;
      return data;
    }
    this.transfers.grpc++;
    return this.readOverGrpc(arrayId, offset, length, callOptions, into);
  }

  /**
   * A GET into `into`, of the answer's size as this session knows it. getArray checks a length the
   * caller named (OUT_OF_RANGE); to the end of an array (length 0) the daemon answers exactly the rest
   * of it, so an answer of another length is another server's at the data address (a proxy's, a
   * server that is not the daemon), as a non-JSON error answer is: a DataPlaneConnectionError, and the
   * read goes over gRPC. A longer one was a raw RangeError from getArray, a shorter one a short Buffer;
   * a shorter one cut mid-body had its bytes kept as the array's first ones and the rest read over gRPC.
   */
  private async getInto(http: DataPlaneEndpoint, arrayId: string, offset: number, length: number, into: Buffer, callOptions: { deadline?: number }): Promise<Buffer> {
    const notTheDaemons = (answerBytes: number) =>
      new DataPlaneConnectionError(
        `data plane ${describeEndpoint(http)}: a read of array ${arrayId} at offset ${offset} was answered ${answerBytes} bytes where the array has ${into.byteLength} from there: not the daemon's answer`,
      );
    let data: Buffer;
    try {
      data = await httpGetArray(http, this.token, arrayId, offset, length, into, this.client.dataPlaneTransferOptions(callOptions));
    } catch (error) {
      if (error instanceof DestinationTooSmallError) throw notTheDaemons(error.answerBytes);
      // Cut or stalled mid-body, an answer of another length is not the daemon's either: none of its
      // bytes are the array's (finishCutRead would keep them and read only the rest).
      if (error instanceof DataPlaneTransferError && error.answerBytes > 0 && error.answerBytes !== into.byteLength) throw notTheDaemons(error.answerBytes);
      throw error;
    }
    if (data.byteLength !== into.byteLength) throw notTheDaemons(data.byteLength);
    return data;
  }

  /**
   * A GET into `into` whose body ended short: the rest read over ReadArray into the same Buffer (reads
   * are idempotent), or why it cannot be. After the 200 the daemon can only close the connection (README
   * "Data plane"), which it does when another call changes the array meanwhile: a FreeArray, CloseLease
   * (or expiry, eviction) or workspace cycle during the read, which ReadArray answers FAILED_PRECONDITION
   * or UNAUTHENTICATED (LEASE_EXPIRED); a daemon whose data listener restarted, or a proxy, closes it
   * with the array intact. The first byte the GET lacks is read first, within READ_CUT_PROBE_MS (the
   * transfer's deadline when sooner): its refusal is what ReadArray says now, and NOT_FOUND (the array
   * was the lease's when the GET was answered 200) is the FAILED_PRECONDITION "was freed" a ReadArray
   * gets when the array is freed under it; the transfer's deadline passing meanwhile is DEADLINE_EXCEEDED;
   * any other failure of it (the daemon is gone, READ_CUT_PROBE_MS passed) leaves undefined, UNAVAILABLE.
   * Once that byte reads, the rest is read with the transfer's deadline, and its failure is the read's
   * error. A ReadArray that ends without an error short of the bytes asked (the probe's byte, or the rest)
   * is UNAVAILABLE saying so: `into` was allocated unsafe, and would be returned with bytes never read.
   * A GET whose answer stalled (no byte for stallTimeoutMs: a proxy or network path that hung, the
   * connection destroyed here) is finished the same way: reads are idempotent, and the bytes it got
   * are the daemon's as much as those of a GET cut by a close.
   */
  private async finishCutRead(arrayId: string, offset: number, into: Buffer, cut: DataPlaneTransferError, callOptions: { deadline?: number }): Promise<Buffer | TensormemClientError | undefined> {
    if (!cut.peerClosed && !cut.stalled) return undefined;
    const from = cut.bodyBytesReceived;
    const what = `(the data plane GET ${cut.stalled ? 'stalled' : 'was cut'}: ${cut.message})`;
    /** A ReadArray that ended without an error before `bytes` from `at` (of the array) came: `into` would hold bytes never read. */
    const short = (at: number, got: number, bytes: number) =>
      new TensormemClientError(Status.UNAVAILABLE, undefined, `ReadArray of the rest of array ${arrayId} from byte ${at} answered ${got} of ${bytes} bytes ${what}`, { array_id: arrayId });
    const probeDeadline = Math.min(callOptions.deadline ?? Infinity, Date.now() + READ_CUT_PROBE_MS);
    let first: Buffer;
    try {
      first = await this.readOverGrpc(arrayId, offset + from, 1, { deadline: probeDeadline }, into.subarray(from, from + 1));
    } catch (error) {
      if (!(error instanceof TensormemClientError)) return undefined;
      if (error.code === Status.NOT_FOUND) return new TensormemClientError(Status.FAILED_PRECONDITION, 'FAILED_PRECONDITION', `array ${arrayId} was freed ${what}`, { array_id: arrayId });
      if (error.code === Status.UNAUTHENTICATED || error.code === Status.FAILED_PRECONDITION) return new TensormemClientError(error.code, error.reason, `${error.details} ${what}`, error.errorMetadata);
      // The transfer's own deadline, not READ_CUT_PROBE_MS, passed: DEADLINE_EXCEEDED, as anywhere else in the read.
      if (error.code === Status.DEADLINE_EXCEEDED && callOptions.deadline !== undefined && callOptions.deadline <= probeDeadline) return new TensormemClientError(error.code, error.reason, `${error.details} ${what}`, error.errorMetadata);
      return undefined;
    }
    if (first.byteLength !== 1) return short(offset + from, first.byteLength, 1);
    const rest = into.byteLength - from - 1;
    if (rest > 0) {
      const read = await this.readOverGrpc(arrayId, offset + from + 1, rest, callOptions, into.subarray(from + 1));
      if (read.byteLength !== rest) return short(offset + from + 1, read.byteLength, rest);
    }
    return into;
  }

  /** Reads over a ReadArray server stream, whatever the size. */
  async readGrpc(arrayId: string, offset = 0, length = 0): Promise<Buffer> {
    requireArrayId(arrayId);
    requireByteCount('offset', offset);
    requireByteCount('length', length);
    checkReadSize(arrayId, length);
    return this.readOverGrpc(arrayId, offset, length, this.client.callOptions(), this.expectedReadBytes(arrayId, offset, length));
  }

  /** The bytes a read answers: `length`, or (0: to the end) the rest of an array whose size the session knows; undefined otherwise. */
  private expectedReadBytes(arrayId: string, offset: number, length: number): number | undefined {
    if (length !== 0) return length;
    const size = this.arraySizes.get(arrayId);
    return size !== undefined && offset <= size ? size - offset : undefined;
  }

  /**
   * One ReadArray stream into one Buffer. With the answer's size `expected` known, each chunk is copied
   * into a Buffer of that size as it comes and can be collected at once: gathering the chunks and joining
   * them at the end held the body twice (a 256 MiB read took 533 MiB more at its peak; the data plane,
   * reading into its destination, 256). Unknown (a read to the end of an array the session has not
   * seen), the chunks are gathered and joined. `expected` may be the Buffer to read into, of the answer's size.
   */
  private readOverGrpc(arrayId: string, offset: number, length: number, callOptions: { deadline?: number }, expected?: number | Buffer): Promise<Buffer> {
    // Allocated before the call: one that cannot be fails the read with nothing sent (and no stream left open).
    const buffer = typeof expected === 'object' ? expected : expected !== undefined && expected > 0 ? answerBuffer(arrayId, expected) : undefined;
    return new Promise((resolve, reject) => {
      const stream = this.client.arrays.ReadArray({ array_id: arrayId, offset, length }, this.md, callOptions);
      let into = buffer;
      const chunks: Buffer[] = [];
      let received = 0;
      let tooLarge = false;
      stream.on('data', (message: { data: Buffer }) => {
        if (tooLarge) return;
        if (into && received + message.data.byteLength <= into.byteLength) {
          message.data.copy(into, received);
          received += message.data.byteLength;
          return;
        }
        if (into) {
          // More than the session expected (never, as the daemon answers): gathered from here on.
          chunks.push(into.subarray(0, received));
          into = undefined;
        }
        received += message.data.byteLength;
        if (received > LeaseSession.maxReadBytes) {
          // A read to the end of an array this session did not know the size of: stop it here rather
          // than hold every byte and then fail to join them (Buffer.concat would throw in 'end').
          tooLarge = true;
          chunks.length = 0;
          stream.cancel();
          reject(readTooLarge(arrayId, `more than ${LeaseSession.maxReadBytes}`));
          return;
        }
        chunks.push(message.data);
      });
      stream.on('error', (error: ServiceError) => reject(clientError(error)));
      stream.on('end', () => {
        try {
          resolve(into ? into.subarray(0, received) : Buffer.concat(chunks, received));
        } catch (error) {
          reject(error); // never thrown out of the stream's event (an uncaught exception)
        }
      });
    });
  }

  async get(arrayId: string): Promise<ArrayInfo__Output> {
    const response = await call<{ array: ArrayInfo__Output | null; data_address?: string }>((cb) => this.client.arrays.GetArray({ array_id: arrayId }, this.md, this.client.callOptions(), cb));
    if (this.learnsDataPlane && response.data_address) {
      this.learnsDataPlane = false;
      this.dataPlane = this.client.dataPlaneEndpoint(response.data_address);
    }
    return this.remember(response.array!);
  }

  /** Every array of the lease (ListArrays, LIST_ARRAYS_PAGE_SIZE a reply). */
  async list(): Promise<ArrayInfo__Output[]> {
    const arrays: ArrayInfo__Output[] = [];
    let pageToken = '';
    do {
      const page = await this.listPage({ pageSize: LIST_ARRAYS_PAGE_SIZE, pageToken });
      arrays.push(...page.arrays);
      pageToken = page.nextPageToken;
    } while (pageToken !== '');
    return arrays;
  }

  /** One ListArrays reply: pageSize 0 (the default) for every array at once; pageToken a previous page's nextPageToken. */
  async listPage(request: { pageSize?: number; pageToken?: string } = {}): Promise<{ arrays: ArrayInfo__Output[]; nextPageToken: string; totalCount: number }> {
    checkOptionNames('listPage', request);
    const response = await call<{ arrays: ArrayInfo__Output[]; next_page_token: string; total_count: number }>((cb) =>
      this.client.arrays.ListArrays({ lease_id: this.leaseId, page_size: request.pageSize ?? 0, page_token: request.pageToken ?? '' }, this.md, this.client.callOptions(), cb),
    );
    return { arrays: response.arrays, nextPageToken: response.next_page_token, totalCount: response.total_count };
  }

  /** FreeArray; also unmaps this client's mapping of the array, if it exported it. */
  async free(arrayId: string): Promise<number> {
    try {
      return (await call<{ freed_bytes: number }>((cb) => this.client.arrays.FreeArray({ array_id: arrayId }, this.md, this.client.callOptions(), cb))).freed_bytes;
    } finally {
      // Also when FreeArray fails (the lease expired or was evicted: the array is gone anyway).
      this.arraySizes.delete(arrayId);
      this.releaseMapping(arrayId);
    }
  }

  /** Shared-memory names this session mapped, by array id (unmapped on free and close). */
  private readonly mappedNames = new Map<string, string>();

  private releaseMapping(arrayId: string): void {
    const name = this.mappedNames.get(arrayId);
    if (name === undefined) return;
    this.mappedNames.delete(arrayId);
    this.client.mappings.release(name);
  }

  /**
   * ExportArray, then (shared memory) the array's bytes through a mapping of the region, made once per
   * region and mode and reused: read it directly; after writing through it (writable: true), call
   * sync(id, 'SYNC_DIRECTION_TO_DEVICE') for a device array's mirror. Before reading a device array's
   * mirror after device-side changes other than WriteArray, sync(id, 'SYNC_DIRECTION_TO_HOST').
   * `map: false` returns the handle only (to pass to another process). Without `writable: true` the
   * mapping is private: a store into it stays in this process (that page becomes its own copy) and
   * never reaches the array.
   */
  async exportArray(arrayId: string, options: ExportOptions = {}): Promise<ArrayExport> {
    checkOptionNames('exportArray', options);
    optionalBoolean('exportArray option writable', options.writable);
    optionalBoolean('exportArray option map', options.map);
    const response = await call<ExportArrayResponse__Output>((cb) =>
      this.client.arrays.ExportArray({ array_id: arrayId, side: options.side ?? 'EXPORT_SIDE_UNSPECIFIED' }, this.md, this.client.callOptions(), cb),
    );
    const result: ArrayExport = { array: response.array!, moved: response.moved };
    if (response.cuda_ipc) {
      const region = response.cuda_ipc;
      result.cudaIpc = { handle: region.handle, device: region.device, offset: region.offset, length: region.length, regionBytes: region.region_bytes };
    }
    if (response.shm) {
      const region = response.shm;
      result.shm = { name: region.name, offset: region.offset, length: region.length, regionBytes: region.region_bytes };
      if (options.map ?? true) {
        let mapping: ArrayBuffer;
        try {
          mapping = this.client.mappings.map(region.name, options.writable ?? false);
        } catch (error) {
          throw mappingFailed(arrayId, region.name, error);
        }
        this.mappedNames.set(arrayId, region.name);
        result.bytes = Buffer.from(mapping, region.offset, region.length);
      }
    }
    return result;
  }

  async duplicate(arrayId: string, options: DuplicateOptions = {}): Promise<ArrayInfo__Output> {
    checkOptionNames('duplicate', options);
    const request = { array_id: arrayId, placement: options.placement ?? 'PLACEMENT_UNSPECIFIED', workspace_id: options.workspaceId ?? '', detached: options.detached ?? false, label: options.label ?? '' };
    return this.remember((await call<{ array: ArrayInfo__Output | null }>((cb) => this.client.arrays.DuplicateArray(request, this.md, this.client.callOptions(), cb))).array!);
  }

  async sync(arrayId: string, direction: 'SYNC_DIRECTION_TO_HOST' | 'SYNC_DIRECTION_TO_DEVICE'): Promise<ArrayInfo__Output> {
    return (await call<{ array: ArrayInfo__Output | null }>((cb) => this.client.arrays.SyncArray({ array_id: arrayId, direction }, this.md, this.client.callOptions(), cb))).array!;
  }

  /** CreateWorkspace: the lease's workspace `name`, created with `config` when there is none. */
  async createWorkspace(name: string, config?: WorkspaceConfig): Promise<WorkspaceInfo__Output> {
    return this.workspaceCall('CreateWorkspace', { lease_id: this.leaseId, name, config: config ?? null });
  }

  enterWorkspace(workspaceId: string): Promise<WorkspaceInfo__Output> {
    return this.workspaceCall('EnterWorkspace', { workspace_id: workspaceId });
  }

  leaveWorkspace(workspaceId: string): Promise<WorkspaceInfo__Output> {
    return this.workspaceCall('LeaveWorkspace', { workspace_id: workspaceId });
  }

  borrowWorkspace(workspaceId: string): Promise<WorkspaceInfo__Output> {
    return this.workspaceCall('BorrowWorkspace', { workspace_id: workspaceId });
  }

  initializeWorkspace(workspaceId: string): Promise<WorkspaceInfo__Output> {
    return this.workspaceCall('InitializeWorkspace', { workspace_id: workspaceId });
  }

  destroyWorkspace(workspaceId: string): Promise<WorkspaceInfo__Output> {
    return this.workspaceCall('DestroyWorkspace', { workspace_id: workspaceId });
  }

  getWorkspace(workspaceId: string): Promise<WorkspaceInfo__Output> {
    return this.workspaceCall('GetWorkspace', { workspace_id: workspaceId });
  }

  /**
   * ScopeOut: allocations are detached until LeaveWorkspace of the workspace it left; resolves to that
   * workspace (null when none was current). That LeaveWorkspace closes this block only: the cycle takes
   * a second one.
   */
  async scopeOut(): Promise<WorkspaceInfo__Output | null> {
    const response = await call<{ workspace: WorkspaceInfo__Output | null }>((cb) => this.client.workspaces.ScopeOut({ lease_id: this.leaseId }, this.md, this.client.callOptions(), cb));
    return response.workspace;
  }

  async listWorkspaces(): Promise<WorkspaceInfo__Output[]> {
    return (await call<{ workspaces: WorkspaceInfo__Output[] }>((cb) => this.client.workspaces.ListWorkspaces({ lease_id: this.leaseId }, this.md, this.client.callOptions(), cb))).workspaces;
  }

  /** AcquireCudnnWorkspace: the lease's grow-only cuDNN scratch on a device, sized by `mode` (cuDNN, or requested_bytes). */
  async acquireCudnnWorkspace(request: CudnnWorkspaceRequest): Promise<AcquireCudnnWorkspaceResponse__Output> {
    return call<AcquireCudnnWorkspaceResponse__Output>((cb) => this.client.workspaces.AcquireCudnnWorkspace({ ...request, lease_id: this.leaseId }, this.md, this.client.callOptions(), cb));
  }

  private async workspaceCall(method: 'CreateWorkspace' | 'EnterWorkspace' | 'LeaveWorkspace' | 'BorrowWorkspace' | 'InitializeWorkspace' | 'DestroyWorkspace' | 'GetWorkspace', request: object): Promise<WorkspaceInfo__Output> {
    const stub = this.client.workspaces[method].bind(this.client.workspaces) as unknown as (r: object, m: Metadata, o: object, cb: Callback<{ workspace: WorkspaceInfo__Output | null }>) => void;
    return (await call<{ workspace: WorkspaceInfo__Output | null }>((cb) => stub(request, this.md, this.client.callOptions(), cb))).workspace!;
  }

  /**
   * RenewLease: the lease expires `ttlSeconds` from now (0: its TTL so far), which stays its TTL for
   * later renewals; `lease` is updated to it (ttl_seconds, expires_at), so that startKeepAlive() without
   * an interval renews within it. A keep-alive already running keeps its interval: start it again.
   * After stopKeepAlive() it first waits for the stopped stream's last answer (stopKeepAlive), within
   * the client's deadline: one that passes meanwhile fails renew() with DEADLINE_EXCEEDED.
   */
  async renew(ttlSeconds = 0): Promise<Lease__Output> {
    // One deadline for the wait and the call, as write()'s covers its fallback.
    const callOptions = this.client.callOptions();
    await untilDeadline(this.keepAliveSettled, callOptions.deadline);
    const response = await call<{ lease: Lease__Output | null }>((cb) => this.client.leases.RenewLease({ lease_id: this.leaseId, ttl_seconds: ttlSeconds }, this.md, callOptions, cb));
    this.renewed(response.lease!.ttl_seconds, response.lease!.expires_at);
    return response.lease!;
  }

  /**
   * @internal A renewal's answer (RenewLease, a KeepAlive message): `lease` takes its TTL and expiry.
   * Only OpenLease's answer holds the token, so the rest of `lease` is kept.
   */
  renewed(ttlSeconds: number, expiresAt: Lease__Output['expires_at']): void {
    this.lease = { ...this.lease, ttl_seconds: ttlSeconds, expires_at: expiresAt };
  }

  /**
   * @internal A stopped keep-alive's stream, until the daemon has answered every message it sent (or
   * the stream has ended): renew() waits for it, so that no renewal sent before the stop lands after it.
   */
  keepAliveStopping(settled: Promise<void>): void {
    this.keepAliveSettled = Promise.all([this.keepAliveSettled, settled]).then(() => undefined);
  }

  /**
   * Renews the lease over a KeepAlive stream every intervalMs until close(), stopKeepAlive() or the
   * client's close(). A stream that drops (network blip, daemon restart) is reopened after a backoff
   * (100 ms doubling up to intervalMs), for as long as the keep-alive runs; each failure goes to
   * `onError`. The keep-alive stops by itself when the daemon no longer knows the lease (NOT_FOUND,
   * UNAUTHENTICATED, PERMISSION_DENIED) and when it drains (UNAVAILABLE, reason SHUTTING_DOWN: every
   * lease is freed when its drain ends, so there is nothing left to renew). A stream that stays open but stops answering (the daemon
   * hung, a network path that drops packets without a reset) goes to `onError` too, once per stall:
   * DEADLINE_EXCEEDED at the first renewal sent while two earlier ones wait for their answer, the
   * oldest for 1.5 intervals (one late renewal is no stall: a process whose event loop was blocked runs
   * its timer before it reads the answer that came meanwhile; the connection's own pings do not wait
   * like this, see ClientOptions.keepalive); the stream is kept (cancelling it would close a releaseOnDisconnect lease the moment the
   * path heals), and a later answer re-arms the check. Its timer does not keep the process alive.
   * A KeepAlive stream is one of the tenant's streams that --max-tenant-streams counts: while the daemon
   * refuses it (RESOURCE_EXHAUSTED, TOO_MANY_STREAMS: the tenant's other streams fill the cap), the lease
   * is renewed with RenewLease (a unary call, not counted) at each retry, so that it does not expire;
   * releaseOnDisconnect is not armed until a stream is open again.
   * With releaseOnDisconnect the daemon closes the lease as soon as this process's stream drops.
   * Throws CANCELLED after the client's close().
   * `intervalMs` unset: a third of the lease's TTL (`lease.ttl_seconds`: as granted, or as the last
   * renew(ttlSeconds) set it). Anything but a whole
   * number of ms from 1 to 2^31 - 1 is INVALID_ARGUMENT: Node's setInterval took `'10s'`, 0 or none as
   * 1 ms, and the keep-alive sent hundreds of renewals a second.
   */
  startKeepAlive(intervalMs?: number, options: KeepAliveOptions = {}): void {
    checkOptionNames('startKeepAlive', options);
    optionalBoolean('startKeepAlive option releaseOnDisconnect', options.releaseOnDisconnect);
    requireCallback('startKeepAlive option onError', options.onError);
    intervalMs = intervalMs === undefined ? defaultKeepAliveMs(this.lease.ttl_seconds) : positiveMs('intervalMs', intervalMs);
    this.client.requireOpen();
    this.stopKeepAlive();
    this.stopKeepAlive = keepLeaseAlive(this, intervalMs, options, (stop) => {
      if (this.stopKeepAlive === stop) this.stopKeepAlive = noKeepAlive;
    });
  }

  /**
   * Stops startKeepAlive's renewals. Its stream ends with one last message, which disarms
   * releaseOnDisconnect without renewing the lease (lease.proto KeepAliveRequest.no_renew): the lease
   * expires when the last renewal said (`lease.expires_at`, which the last message's answer updates), or
   * as a renew() after the stop says: renew() first waits for that answer, so that no renewal sent before
   * the stop reaches the daemon after it.
   */
  stopKeepAlive(): void {}

  /** CloseLease; also unmaps the arrays this session mapped. */
  async close(): Promise<number> {
    this.stopKeepAlive();
    for (const arrayId of [...this.mappedNames.keys()]) this.releaseMapping(arrayId);
    return (await call<{ freed_bytes: number }>((cb) => this.client.leases.CloseLease({ lease_id: this.leaseId }, this.md, this.client.callOptions(), cb))).freed_bytes;
  }
}

/**
 * exportArray's mapping of the region it was answered failed (the addon's SYSTEM_ERROR, a plain Error
 * with the call's errno): as a TensormemClientError, so that a trainer branching on code sees it like any other refusal. ENOENT
 * is NOT_FOUND: the array was freed, or its lease ended, between the answer and the mapping (a free()
 * in flight beside the export), or another process unlinked the name.
 */
function mappingFailed(arrayId: string, name: string, error: unknown): unknown {
  if (!(error instanceof Error)) return error;
  const errno = isNativeError(error) ? error.errno : undefined;
  const { ENOENT, EACCES, EPERM, ENOMEM, EMFILE, ENFILE } = osConstants.errno;
  const code =
    errno === ENOENT ? Status.NOT_FOUND : errno === EACCES || errno === EPERM ? Status.PERMISSION_DENIED : errno === ENOMEM || errno === EMFILE || errno === ENFILE ? Status.RESOURCE_EXHAUSTED : Status.INTERNAL;
  const gone = code === Status.NOT_FOUND ? ' (the array was freed or its lease ended meanwhile, or another process unlinked the name)' : '';
  return new TensormemClientError(code, undefined, `exportArray of array ${arrayId}: ${error.message}${gone}; map: false returns the handle without mapping it`, { array_id: arrayId, shm_name: name });
}

/**
 * The gRPC write sent after a data plane PUT whose connection was lost once its body began failed too.
 * The daemon wrote what it received of the PUT into the array as it came, so up to `bodyBytesSent`
 * bytes from `offset` may hold the new data, which the gRPC error alone denies when it is a refusal
 * before the stream began (TOO_MANY_STREAMS: "WriteArray was refused"): the details say so, and
 * the metadata gives data_plane_bytes_sent.
 */
function afterCutPut(error: unknown, cut: DataPlaneConnectionError, arrayId: string, offset: number): unknown {
  if (!(error instanceof TensormemClientError)) return error;
  const sent = cut.bodyBytesSent;
  const details = `${error.details}; the data plane PUT tried first was cut after ${sent} bytes of its body went out (${cut.message}): bytes ${offset} to ${offset + sent - 1} of array ${arrayId} may hold part of the new data: rewrite the range`;
  return new TensormemClientError(error.code, error.reason, details, { ...error.errorMetadata, data_plane_bytes_sent: String(sent) });
}

/** write/writeGrpc's options: an object of the options they take, checksum true or false. */
function checkWriteOptions(options: WriteOptions): void {
  requireOptionsObject('write options', options);
  checkOptionNames('write', options);
  optionalBoolean('write option checksum', options.checksum);
}

/** RESOURCE_EXHAUSTED: `bytes` of `arrayId` do not fit in the one Buffer a read returns. */
function readTooLarge(arrayId: string, bytes: string): TensormemClientError {
  const message = `a read of ${bytes} bytes of array ${arrayId} does not fit in one Buffer (at most ${LeaseSession.maxReadBytes} bytes): read it in ranges`;
  return new TensormemClientError(Status.RESOURCE_EXHAUSTED, undefined, message, { field: 'length' });
}

/**
 * The Buffer for a read's `bytes`. Under buffer.constants.MAX_LENGTH (2^53 - 1 on Node.js 22 and
 * later) the memory may still be missing: V8 throws a RangeError ("Array buffer allocation failed"),
 * which is RESOURCE_EXHAUSTED naming the read here, before anything is sent.
 */
function answerBuffer(arrayId: string, bytes: number): Buffer {
  try {
    return Buffer.allocUnsafe(bytes);
  } catch (error) {
    if (!(error instanceof RangeError)) throw error;
    const message = `a read of ${bytes} bytes of array ${arrayId}: this process could not allocate a Buffer that large (${error.message}): read it in ranges`;
    throw new TensormemClientError(Status.RESOURCE_EXHAUSTED, undefined, message, { field: 'length' });
  }
}

/** A read of `bytes` (0: to the end, size unknown here), checked before anything is sent. */
function checkReadSize(arrayId: string, bytes: number): void {
  if (bytes > LeaseSession.maxReadBytes) throw readTooLarge(arrayId, String(bytes));
}

function noKeepAlive(): void {}

/** Waits for `settled`, or until `deadline` (ms since the epoch; none: no limit), whichever comes first. */
async function untilDeadline(settled: Promise<void>, deadline: number | undefined): Promise<void> {
  if (deadline === undefined) return settled;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([settled, new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.max(0, deadline - Date.now()))))]);
  } finally {
    clearTimeout(timer);
  }
}

/** startKeepAlive's interval when none is given: a third of the lease's TTL (at least 1 s for a TTL the reply did not give). */
function defaultKeepAliveMs(ttlSeconds: number): number {
  const ttlMs = Number(ttlSeconds) * 1000;
  return Number.isFinite(ttlMs) && ttlMs > 0 ? Math.min(Math.max(Math.floor(ttlMs / 3), 1), MAX_TIMER_MS) : 1000;
}
