/**
 * The HTTP/1.1 bulk data plane (DESIGN.md §1): `PUT`, `GET` and `HEAD /v1/arrays/{array_id}`, with
 * the lease token as `Authorization: Bearer <token>`, exactly the gRPC rule (a lease sees only its own
 * arrays; any other id is 404 NOT_FOUND). Bodies stream into pool memory chunk by chunk through
 * TensorArray.writeInline / TensorArray.write, the paths the gRPC ArrayService uses, so host-mirror
 * validity is the same whichever way the bytes came; they go out of it with no copy, as views of the
 * array's host copy (TensorArray.lendHostView) written to the socket.
 *
 * PUT: the body goes at offset 0, or where `Content-Range: bytes a-b/size|*` says. Its length is
 * Content-Length, checked against the array's end before any byte is written (416 otherwise), or it
 * is chunked (Transfer-Encoding: chunked, decoded by the connection), at most the range's length or,
 * without Content-Range, the array's size, and refused at its first byte past that. An
 * optional `X-Tensormem-Crc32c` (8 hex digits or base64 of the 4 big-endian bytes) is checked over
 * the body as it arrives; a chunked body may send it in its trailer instead when its head announces
 * it (`Trailer: X-Tensormem-Crc32c`). See README "Data plane" for what the array holds after a
 * refused write.
 * GET: the whole array (200), one `Range: bytes=…` (206 with Content-Range), or several (206
 * multipart/byteranges, one part per range).
 *
 * HTTP/1.1 itself is ./http1-server.ts (the listener and its connection cap), with heads parsed in
 * ./http1-head.ts, keep-alive and bodies read into reused buffers in ./http1-connection.ts, and each
 * request and its answer in ./http-exchange.ts.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { Server as TlsServer } from 'node:tls';
import { TENSORMEMCTL_TOKEN, TensormemError, clipped, invalidArgument, unauthenticated, type ErrorReason } from '../errors';
import { listenFailure, parseHostPort, unixSocketPath } from '../config/listen-address';
import { logTlsRefusals, tlsFilesOf, tlsServerOptions } from '../config/tls-server-options';
import { SummarizedLog } from '../summarized-log';
import type { Lease } from '../leases/lease';
import type { HostViewLoan, TensorArray } from '../memory/tensor-array';
import { ENDED_READ_GRACE_MS } from '../service/array-service';
import { removeStaleSocket } from '../service/server';
import { ServiceContext, refuseWhileDraining } from '../service/service-context';
import { withOthersMasked } from '../service/socket-umask';
import { ByteRange, parseContentRange, parseRanges } from './byte-ranges';
import { checksumMismatch, crc32c, crc32cHex, crc32cImplementation, parseCrc32c, type Crc32cImplementation } from '../crc32c';
import { httpErrorOf } from './http-errors';
import { listElements } from './http1-head';
import { BODY_CUT_SHORT, DEFAULT_BODY_READ_BYTES, Http1Server, HttpExchange } from './http1-server';

export const ARRAY_PATH_PREFIX = '/v1/arrays/';
export const CRC32C_HEADER = 'x-tensormem-crc32c';

/** Pieces of a GET handed to the socket and not yet taken by it (views of pool memory, not copies). */
const PIECES_ON_SOCKET = 4;

/** The smallest body read buffer bodyReadBytesFor picks, however low --async-copy-threshold is. */
const MIN_BODY_READ_BYTES = 16 * 1024;

export interface RunningDataPlane {
  /** http://HOST:PORT, https://HOST:PORT or unix:PATH (port 0 resolved). */
  address: string;
  server: Http1Server;
  /** What computes X-Tensormem-Crc32c (src/crc32c.ts): the CPU's instruction, the addon's table, or JavaScript. */
  crc32c: Crc32cImplementation;
  /**
   * Stops accepting, lets requests in flight finish for up to `timeoutMs`, then cuts the rest and waits
   * (up to `timeoutMs` more) until every cut exchange has closed and handed back what it held of pool
   * memory (views lent to a GET's socket, a PUT's copy in flight), so the pools may be released once it
   * resolves. Resolves to whether all finished and all came back in time.
   */
  close(timeoutMs: number): Promise<boolean>;
  /** Cuts every request in flight now (a second signal during the drain): their connections are closed. */
  cut(): void;
  /** Requests in flight that the drain cut (by cut(), or when close()'s `timeoutMs` passed): what drain_incomplete reports. */
  readonly cutRequests: number;
}

/** What the data plane tells the daemon's metrics (DaemonMetrics) about its requests. */
export interface DataPlaneObserver {
  /** A request failed with this ErrorInfo reason (refused before its answer, or cut mid-body). */
  failed(method: DataPlaneMethod, reason: string): void;
  /** A request ended: answered with HTTP `status`, or 'aborted' when its connection went away first; `seconds` from its head. */
  ended(method: DataPlaneMethod, status: string, seconds: number): void;
}

/** A request's method as the metrics name it: the three served, and 'other' for anything a client sends (405), which must not make a series each. */
export type DataPlaneMethod = 'PUT' | 'GET' | 'HEAD' | 'other';

function methodOf(exchange: HttpExchange): DataPlaneMethod {
  const method = exchange.method;
  return method === 'PUT' || method === 'GET' || method === 'HEAD' ? method : 'other';
}

/**
 * Binds --data-listen; resolves to undefined when it is off. `observer` is told how every request ended
 * and the reason of every one that failed with one; the bytes moved go to context.transfers.
 */
export async function startDataPlane(context: ServiceContext, observer?: DataPlaneObserver): Promise<RunningDataPlane | undefined> {
  const { config } = context;
  const address = config.dataListen;
  if (!address) return undefined;
  // Chosen now: a TENSORMEM_CRC32C that is not one of its values stops the start, not the first checked PUT.
  const crc32cBy = crc32cImplementation();
  // loadConfig checked the form, startDaemon that open mode listens on loopback or unix: only.
  const socketPath = unixSocketPath(address);
  const { host, port } = socketPath === undefined ? parseHostPort(address)! : { host: '', port: 0 };
  const tls = socketPath === undefined ? config.tls : undefined;
  const plane = new DataPlane(context, observer);
  // A flood refuses thousands a second, and a tenant can stall as many requests as it opens
  // connections: one line an interval each, with how many it stands for
  // (tensormem_data_plane_connections_refused_total counts each refusal).
  const refusals = new SummarizedLog<undefined>((refused) =>
    context.log.warn(
      { event: 'data_plane_connections_refused', refused, max_connections: config.dataMaxConnections },
      `data plane: ${refused} connection(s) refused since the last such line: ${config.dataMaxConnections} open, the --data-max-connections limit`,
    ),
  );
  const stalls = new SummarizedLog<{ method: string; url: string }>((stalled, last) =>
    context.log.warn(
      { event: 'data_plane_stalled', stalled, method: last.method, url: last.url, stall_timeout_ms: config.dataStallTimeoutMs },
      `data plane: ${stalled} request(s) moved no byte for ${config.dataStallTimeoutMs} ms (--data-stall-timeout) and were cut since the last such line, the last a ${last.method}`,
    ),
  );
  const http = new Http1Server((exchange) => plane.handle(exchange), {
    tls: tls && tlsServerOptions(tlsFilesOf(context)!),
    stallTimeoutMs: config.dataStallTimeoutMs,
    bodyReadBytes: bodyReadBytesFor(config.asyncCopyThresholdBytes),
    onStall: (exchange) => stalls.note({ method: exchange.method, url: clipped(exchange.url) }),
    maxConnections: config.dataMaxConnections,
    onRefused: () => refusals.note(undefined),
    keptTrailers: [CRC32C_HEADER],
  });
  const server = http.server;
  if (tls) logTlsRefusals(server as TlsServer, '--data-listen', context.log);

  if (socketPath !== undefined) await removeStaleSocket(socketPath, '--data-listen', context.log);
  await withOthersMasked(
    () =>
      new Promise<void>((resolve, reject) => {
        server.once('error', (error) => reject(listenFailure('--data-listen', address, error.message)));
        if (socketPath !== undefined) server.listen(socketPath, resolve);
        else server.listen(port, host, resolve);
      }),
  );
  let bound: string;
  if (socketPath !== undefined) {
    chmodSync(socketPath, 0o660);
    bound = `unix:${socketPath}`;
  } else {
    const info = server.address() as AddressInfo;
    const shownHost = info.family === 'IPv6' ? `[${info.address}]` : info.address;
    bound = `${tls ? 'https' : 'http'}://${shownHost}:${info.port}`;
  }
  return {
    address: bound,
    server: http,
    crc32c: crc32cBy,
    close: (timeoutMs) => {
      refusals.flush();
      stalls.flush();
      return plane.close(http, timeoutMs);
    },
    cut: () => plane.cut(http),
    get cutRequests() {
      return plane.cutRequests;
    },
  };
}

class DataPlane {
  private readonly inFlight = new Set<HttpExchange>();
  private idle?: () => void;
  /**
   * What still touches pool memory or may yet: exchanges not closed, serve() calls not settled, views
   * lent to a socket and not given back, PUT copies in flight. close() waits for it to reach 0.
   */
  private held = 0;
  private allBack?: () => void;
  /** close() stopped waiting for `held`: what comes back later may find the pools released. */
  private abandoned = false;
  /** Requests in flight when the drain cut their connections, each counted once (a timeout, then a second signal). */
  private readonly cutOnes = new WeakSet<HttpExchange>();
  cutRequests = 0;

  constructor(
    private readonly context: ServiceContext,
    private readonly observer?: DataPlaneObserver,
  ) {}

  handle(exchange: HttpExchange): void {
    this.inFlight.add(exchange);
    const open = this.hold();
    const started = process.hrtime.bigint();
    exchange.onClose(() => {
      this.observer?.ended(methodOf(exchange), exchange.destroyed ? 'aborted' : String(exchange.statusCode), Number(process.hrtime.bigint() - started) / 1e9);
      this.inFlight.delete(exchange);
      open();
      if (this.inFlight.size === 0) this.idle?.();
    });
    const serving = this.hold();
    this.serve(exchange)
      .catch((error) => this.fail(exchange, error))
      .finally(serving);
  }

  /** Counts one thing close() must wait for; the function returned (idempotent) says it is over. */
  private hold(): () => void {
    this.held++;
    let over = false;
    return () => {
      if (over) return;
      over = true;
      if (--this.held === 0) this.allBack?.();
    };
  }

  /**
   * Gives a lent view back. After close() gave up waiting the pools may be released already (the
   * array's blocks with them): giving the view back still unpins its chunk, and what fails after that
   * (freeing a block of a pool that is gone) is dropped rather than thrown into a socket callback.
   */
  private endLoan(loan: HostViewLoan): void {
    if (!this.abandoned) {
      loan.end();
      return;
    }
    try {
      loan.end();
    } catch (error) {
      this.context.log.debug({ event: 'data_plane_late_give_back', error: (error as Error).message }, 'a view lent by the data plane came back after shutdown released the pools');
    }
  }

  private async serve(exchange: HttpExchange): Promise<void> {
    refuseWhileDraining(this.context);
    const path = exchange.url.split('?')[0];
    if (!path.startsWith(ARRAY_PATH_PREFIX) || path.length === ARRAY_PATH_PREFIX.length || path.indexOf('/', ARRAY_PATH_PREFIX.length) !== -1) {
      this.sendJson(exchange, 404, { code: 404, status: 'NOT_FOUND', reason: 'NOT_FOUND' satisfies ErrorReason, message: `no endpoint ${exchange.method} ${path}: the data plane serves PUT, GET and HEAD ${ARRAY_PATH_PREFIX}{array_id}`, metadata: { path } });
      return;
    }
    const method = exchange.method;
    if (method !== 'PUT' && method !== 'GET' && method !== 'HEAD') {
      exchange.setHeader('Allow', 'PUT, GET, HEAD');
      this.sendJson(exchange, 405, { code: 405, status: 'INVALID_ARGUMENT', reason: 'INVALID_ARGUMENT' satisfies ErrorReason, message: `method ${method} is not served on ${path}: use PUT, GET or HEAD`, metadata: { method } });
      return;
    }
    let arrayId: string;
    try {
      arrayId = decodeURIComponent(path.slice(ARRAY_PATH_PREFIX.length));
    } catch {
      throw invalidArgument('array_id', 'a percent-encoded array id', path.slice(ARRAY_PATH_PREFIX.length));
    }
    const lease = this.context.registry.authenticate(bearerTokenOf(exchange));
    const array = lease.getArray(arrayId);
    if (method === 'PUT') await this.put(exchange, lease, array);
    else await this.get(exchange, lease, array, method === 'HEAD');
  }

  /**
   * Body → array, piece by piece as the connection reads it (straight out of its read buffer, copied
   * inline into pool memory when the array allows it); the answer is sent once every byte is in.
   * A lease that ends while the body is still arriving gets it answered at once (LEASE_EXPIRED).
   */
  private async put(exchange: HttpExchange, lease: Lease, array: TensorArray): Promise<void> {
    const body = bodyLengthOf(exchange, array);
    const range = body.range;
    const crcHeader = exchange.headers[CRC32C_HEADER];
    const crc32cSent: Crc32cSent = { headerText: crcHeader, headerCrc: crcHeader === undefined ? undefined : checksumOf(crcHeader, 'header'), announced: announcesTrailer(exchange, CRC32C_HEADER) };
    // A chunked body's CRC may come in its trailer, which a producer that streams knows only at the
    // end. The CRC is computed as the body arrives when the head gives it or announces that trailer
    // (Trailer: X-Tensormem-Crc32c, RFC 9110 §6.6.2), not for every chunked body: in JavaScript it
    // costs about 3 times the daemon CPU of the rest of the PUT (measured on a 2-core VM: 0.42 s
    // against 0.13 s per 256 MiB), with the addon's crc32 instruction (src/crc32c.ts) a few
    // percent (0.13-0.14 s against 0.12-0.14 s), and a CPU without one takes the addon's table. An unannounced one is refused once it arrives (expectedCrcOf),
    // never taken as checked.
    const computesCrc = crc32cSent.headerCrc !== undefined || (body.chunked && crc32cSent.announced);
    // Only a chunked body has a trailer section: one announced on a Content-Length body can never come
    // (a proxy that buffered the chunked body and sent it on with a Content-Length dropped it), and the
    // body would go unchecked.
    if (crc32cSent.announced && !computesCrc) {
      throw invalidArgument('Trailer', 'X-Tensormem-Crc32c announced only on a chunked body (a Content-Length body has no trailer section): send the CRC-32C in the X-Tensormem-Crc32c header', exchange.headers.trailer);
    }
    array.assertUsable('Cannot write array');
    // Last of the checks made from the headers: a request refused for another reason gets that answer (RFC 9110 §13.2.1).
    checkPreconditions(exchange, array);
    if (exchange.expectsContinue) exchange.writeContinue();

    let position = range.start;
    const end = range.start + range.length;
    let crc = 0;
    const writePiece = (at: number, piece: Uint8Array): void | Promise<void> => {
      // Counted once written, as WriteArray's chunks are: a piece refused (its array freed under the PUT) never landed.
      const landed = () => this.context.transfers?.add('data_plane', 'write', piece.byteLength);
      if (array.writeInline(at, piece)) return landed();
      // The copy goes on in the thread pool even if the connection closes meanwhile (readBody then
      // rejects at once): close() waits for it, so the pool is not released under it.
      const copied = this.hold();
      const writing = array.write(at, piece);
      writing.then(copied, copied);
      return writing.then(landed);
    };
    const reading = exchange.readBody((piece) => {
      const at = position;
      position += piece.byteLength;
      // Only a chunked body can run past the end (a Content-Length one is read to its length): refused at
      // its first byte past it, with what fits written (as any refused write keeps what it received).
      if (position > end) {
        const refusal = invalidArgument('body', `at most ${range.length} bytes (${body.limitedBy})`, `${position - range.start} bytes so far, a chunked body running past that`);
        const fits = piece.subarray(0, end - at);
        const written = fits.byteLength > 0 ? writePiece(at, fits) : undefined;
        if (written) return written.then(() => Promise.reject(refusal));
        throw refusal;
      }
      if (computesCrc) crc = crc32c(piece, crc);
      return writePiece(at, piece);
    });
    // No byte can be written once the lease has ended: a client that stalled mid-body (or is slow) kept
    // its connection until --data-stall-timeout, while a GET of the ended lease is cut within
    // ENDED_READ_GRACE_MS. The PUT is answered then, as any write after the end is, and the connection
    // closed (the rest of the body is read and dropped).
    const forgetLease = lease.whenClosed(() => exchange.abortBody(lease.closedError()));
    const received = await reading.finally(forgetLease).catch((error: { code?: unknown; bytesReceived?: number }) => {
      // The client ended its side mid-body (it can still read the answer): a short body, not a drop.
      if (error?.code === BODY_CUT_SHORT) throw invalidArgument('body', body.expected, `${error.bytesReceived} bytes, then the end of the client's side of the connection`);
      throw error;
    });
    if (body.exact && received !== range.length) throw invalidArgument('body', body.expected, `${received} bytes`);
    const expectedCrc = expectedCrcOf(crc32cSent, exchange.trailers[CRC32C_HEADER], `the ${received} bytes at offset ${range.start}`);
    if (expectedCrc !== undefined && crc !== expectedCrc) throw checksumMismatch('X-Tensormem-Crc32c', range.start, received, expectedCrc, crc, 'a body is never staged');
    if (expectedCrc !== undefined) exchange.setHeader('X-Tensormem-Crc32c', crc32cHex(crc));
    this.sendJson(exchange, 200, { array_id: array.arrayId, offset: range.start, bytes_written: received });
  }

  /**
   * Array → socket in --chunk-bytes pieces, no copy: each piece is a view of the array's host copy
   * (TensorArray.lendHostView) written to the socket as it is, and given back once the socket has
   * taken it or the connection is gone. A few pieces are on the socket at a time; the array cannot be
   * freed or moved under them (a free meanwhile is carried out when the last piece is given back).
   * The success headers are set only once the first piece is lent: a refusal up to then (no host
   * memory for the mirror, the array freed) is a whole JSON answer of its own.
   *
   * A `Range` that selects several ranges is answered `multipart/byteranges` (RFC 9110 §14.6): each
   * range's pieces go out the same way, after a part head of its own (the boundary, its Content-Type
   * and Content-Range), and the whole body's Content-Length is known before the first byte.
   */
  private async get(exchange: HttpExchange, lease: Lease, array: TensorArray, headOnly: boolean): Promise<void> {
    // Range applies to GET only: a server MUST ignore it on any other method (RFC 9110 §14.2), so a HEAD
    // with a Range answers what a GET without one would (200, the whole length), as HEAD must (§9.3.2).
    // If-Range names a validator (an ETag or a date) this daemon never sends, so it never matches the
    // array: the Range is ignored and the whole array sent (RFC 9110 §13.1.5), never a piece of bytes
    // that may have changed since the client's validator.
    const ranges = !headOnly && exchange.headers['if-range'] === undefined ? parseRanges(exchange.headers.range, array.byteSize) : undefined;
    const range = ranges?.length === 1 ? ranges[0] : undefined;
    const parts = ranges && ranges.length > 1 ? multipartOf(ranges, array.byteSize) : undefined;
    const start = range?.start ?? 0;
    const length = range?.length ?? array.byteSize;
    array.assertUsable('Cannot read array');
    if (checkPreconditions(exchange, array) === 'not-modified') {
      exchange.statusCode = 304;
      // The length a 200 would have, and no body (RFC 9110 §8.6, §15.4.5).
      exchange.setHeader('Content-Length', String(array.byteSize));
      exchange.end();
      return;
    }
    const setSuccessHeaders = () => {
      exchange.setHeader('Content-Type', parts ? `multipart/byteranges; boundary=${parts.boundary}` : 'application/octet-stream');
      exchange.setHeader('Accept-Ranges', 'bytes');
      exchange.setHeader('X-Tensormem-Data-Type', array.dataType);
      exchange.setHeader('X-Tensormem-Shape', array.shape.join(','));
      exchange.setHeader('Content-Length', String(parts ? parts.contentLength : length));
      if (range) exchange.setHeader('Content-Range', `bytes ${start}-${start + length - 1}/${array.byteSize}`);
      exchange.statusCode = ranges ? 206 : 200;
    };
    if (headOnly || length === 0) {
      setSuccessHeaders();
      exchange.end();
      return;
    }
    const onSocket = new Set<() => void>();
    let pieceTaken: (() => void) | undefined;
    // The pieces on the socket are views of the array, whose free waits for them: a reader that stopped
    // kept its lease's memory, once the lease had ended, until --data-stall-timeout. As a ReadArray
    // stream is reset then, the connection is cut ENDED_READ_GRACE_MS after the lease ends if the answer
    // is not out by then.
    let cut: NodeJS.Timeout | undefined;
    const forgetLease = lease.whenClosed(() => (cut ??= setTimeout(() => exchange.destroy(), ENDED_READ_GRACE_MS).unref()));
    // After 'close' the socket holds no write any more, so every view may go back then at the latest.
    exchange.onClose(() => {
      forgetLease();
      clearTimeout(cut);
      for (const giveBack of [...onSocket]) giveBack();
    });
    const sections = parts ? parts.ranges : [{ start, length, head: '' }];
    for (const [index, section] of sections.entries()) {
      const chunkBytes = Math.min(this.context.config.chunkBytes, section.length);
      const end = section.start + section.length;
      for (let position = section.start; position < end; position += chunkBytes) {
        while (onSocket.size >= PIECES_ON_SOCKET) await new Promise<void>((resolve) => (pieceTaken = resolve));
        if (exchange.destroyed) return;
        const loan = await array.lendHostView(position, Math.min(chunkBytes, end - position));
        if (exchange.destroyed) {
          this.endLoan(loan);
          return;
        }
        if (index === 0 && position === section.start) setSuccessHeaders();
        if (position === section.start && section.head !== '') exchange.write(section.head);
        const lent = this.hold();
        const giveBack = () => {
          if (!onSocket.delete(giveBack)) return;
          this.endLoan(loan);
          lent();
          pieceTaken?.();
        };
        onSocket.add(giveBack);
        exchange.write(loan.view, giveBack);
        this.context.transfers?.add('data_plane', 'read', loan.view.byteLength);
      }
    }
    if (parts) exchange.write(parts.closeDelimiter);
    exchange.end();
  }

  private sendJson(exchange: HttpExchange, statusCode: number, body: unknown): void {
    exchange.statusCode = statusCode;
    exchange.setHeader('Content-Type', 'application/json');
    exchange.end(JSON.stringify(body));
  }

  private fail(exchange: HttpExchange, error: unknown): void {
    if (isConnectionGone(error, exchange)) {
      this.context.log.debug({ event: 'data_plane_aborted', method: exchange.method, url: exchange.url }, 'data plane client went away mid-transfer');
      exchange.destroy();
      return;
    }
    const body = httpErrorOf(error, this.context.log);
    this.observer?.failed(methodOf(exchange), body.reason);
    if (exchange.headersSent) {
      // Mid-body: the only signal left is a body shorter than its Content-Length. A domain error here
      // (the client freed the array or closed its lease under its own GET) is the client's doing, as
      // ReadArray's is, so debug; an internal one is the operator's (httpErrorOf logged it at error).
      this.context.log[body.status === 'INTERNAL' ? 'warn' : 'debug']({ event: 'data_plane_failed', method: exchange.method, url: exchange.url, reason: body.reason, error: body.message }, 'data plane transfer failed after the headers were sent');
      exchange.destroy();
      return;
    }
    this.context.log.debug({ event: 'data_plane_refused', method: exchange.method, url: exchange.url, code: body.code, reason: body.reason }, body.message);
    // Nothing set for a success answer (a GET's length, range, type) may go out with the error.
    exchange.clearHeaders();
    if (body.code === 401) exchange.setHeader('WWW-Authenticate', 'Bearer realm="tensormem"');
    if (body.code === 416 && body.metadata.field === 'Range') {
      const size = this.sizeOf(exchange);
      if (size !== undefined) exchange.setHeader('Content-Range', `bytes */${size}`);
    }
    if (body.status === 'UNAVAILABLE') exchange.setHeader('Connection', 'close');
    this.sendJson(exchange, body.code, body);
  }

  /** The array's size for a 416's `Content-Range: bytes *\/SIZE`, when the caller may see it. */
  private sizeOf(exchange: HttpExchange): number | undefined {
    try {
      const lease = this.context.registry.authenticate(bearerTokenOf(exchange));
      return lease.getArray(decodeURIComponent(exchange.url.split('?')[0].slice(ARRAY_PATH_PREFIX.length))).byteSize;
    } catch {
      return undefined;
    }
  }

  /** Closes every connection, counting the requests in flight on them as cut. */
  cut(http: Http1Server): void {
    for (const exchange of this.inFlight) {
      if (this.cutOnes.has(exchange)) continue;
      this.cutOnes.add(exchange);
      this.cutRequests++;
    }
    http.closeAllConnections();
  }

  async close(http: Http1Server, timeoutMs: number): Promise<boolean> {
    const stopped = new Promise<void>((resolve) => http.server.close(() => resolve()));
    http.closeIdleConnections();
    const finished = this.inFlight.size === 0 || (await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.idle = () => {
        clearTimeout(timer);
        resolve(true);
      };
    }));
    this.cut(http);
    await stopped;
    // The server's close callback can come before the cut sockets' 'close': their pending writes (views
    // of pool memory) are called back only then, and a GET or PUT may still be between two awaits.
    const allBack = this.held === 0 || (await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.allBack = () => {
        clearTimeout(timer);
        resolve(true);
      };
    }));
    this.allBack = undefined;
    if (!allBack) {
      this.abandoned = true;
      this.context.log.warn({ event: 'data_plane_not_closed', held: this.held, timeout_ms: timeoutMs }, `data plane: ${this.held} holds on pool memory (open exchanges, lent views, copies in flight) still out ${timeoutMs} ms after the connections were cut; the pools are released under them`);
    }
    return finished && allBack;
  }
}

/** A multipart/byteranges body (RFC 9110 §14.6): what goes before each range's bytes, and after the last. */
interface Multipart {
  boundary: string;
  /** Each range with its part head: the delimiter (after the CRLF that ends the previous part's bytes), Content-Type and Content-Range. */
  ranges: Array<ByteRange & { head: string }>;
  closeDelimiter: string;
  /** Of the whole body: part heads, the ranges' bytes and the close delimiter. */
  contentLength: number;
}

/**
 * The parts of a GET of several `ranges` of an array of `size` bytes, in the order listed. The boundary
 * is 32 random hex digits (128 bits), new for each answer: an array holds any bytes, and a fixed
 * boundary that happened to be among them would end a part early for the client's parser. The heads
 * are ASCII, so their lengths in characters are their lengths in bytes.
 */
function multipartOf(ranges: ByteRange[], size: number): Multipart {
  const boundary = randomBytes(16).toString('hex');
  const withHeads = ranges.map((range, index) => ({
    ...range,
    head: `${index === 0 ? '' : '\r\n'}--${boundary}\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes ${range.start}-${range.start + range.length - 1}/${size}\r\n\r\n`,
  }));
  const closeDelimiter = `\r\n--${boundary}--\r\n`;
  const contentLength = withHeads.reduce((total, part) => total + part.head.length + part.length, closeDelimiter.length);
  return { boundary, ranges: withHeads, closeDelimiter, contentLength };
}

/** The CRC-32C a X-Tensormem-Crc32c header or trailer `value` gives; 400 naming the field, where it was and the value when it is none. */
function checksumOf(value: string, where: 'header' | 'trailer'): number {
  const crc = parseCrc32c(value);
  if (crc === undefined) throw invalidArgument('X-Tensormem-Crc32c', `a CRC-32C as 8 hex digits or base64 of 4 bytes (in the ${where})`, value);
  return crc;
}

/** Whether the request's Trailer header (a list, RFC 9110 §6.6.2) names the field `name` (lowercase). */
function announcesTrailer(exchange: HttpExchange, name: string): boolean {
  return listElements(exchange.headers.trailer ?? '').some((field) => field.toLowerCase() === name);
}

/** What a PUT's head says of its CRC-32C: the X-Tensormem-Crc32c header (as sent, and parsed), and whether its Trailer header announces that field. */
interface Crc32cSent {
  headerText?: string;
  headerCrc?: number;
  announced: boolean;
}

/**
 * The CRC-32C a PUT's body must have: the X-Tensormem-Crc32c header's, its chunked trailer's
 * (`trailerText`, read once the body is), or none. A CRC was computed as the body arrived when the head
 * gave one or announced the trailer; otherwise a trailer is refused, since the bytes it names
 * (`written`) went in unchecked. An announced trailer that never came (and no header) is refused
 * too: a proxy may have dropped it. Both given must be the same CRC (in either form): which one the
 * client meant is not ours to guess, so two that differ are 400 naming the field and both values,
 * whichever the bytes match.
 */
function expectedCrcOf(sent: Crc32cSent, trailerText: string | undefined, written: string): number | undefined {
  const rewrite = `${written} were written unchecked (a body is never staged), so that range holds them: rewrite it`;
  if (trailerText === undefined) {
    if (sent.announced && sent.headerCrc === undefined) throw invalidArgument('X-Tensormem-Crc32c', 'the trailer the head announced (Trailer: X-Tensormem-Crc32c)', `a chunked body that ended without it: ${rewrite}`);
    return sent.headerCrc;
  }
  const trailerCrc = checksumOf(trailerText, 'trailer');
  if (sent.headerCrc === undefined && !sent.announced) {
    throw invalidArgument(
      'X-Tensormem-Crc32c',
      `a trailer announced in the head (Trailer: X-Tensormem-Crc32c), so that the body's CRC-32C is computed as it arrives`,
      `${trailerText} in a trailer the head did not announce: ${rewrite}, announcing the trailer`,
    );
  }
  if (sent.headerCrc !== undefined && sent.headerCrc !== trailerCrc) {
    throw invalidArgument('X-Tensormem-Crc32c', 'one CRC-32C: the header and the trailer the same', `${sent.headerText} in the header, ${trailerText} in the trailer`);
  }
  return trailerCrc;
}

/** Where a PUT's body goes and how long it may be, from its headers. */
interface PutBody {
  /** Where it goes: its length is the body's (exact) or the most it may be (a chunked body without Content-Range). */
  range: ByteRange;
  /** The body must be range.length bytes: a Content-Length body, or a chunked one with Content-Range. */
  exact: boolean;
  /** Chunked: its trailer may carry X-Tensormem-Crc32c. */
  chunked: boolean;
  /** What sets range.length, as a refusal names it. */
  limitedBy: string;
  /** The body a refusal for a short one expected. */
  expected: string;
}

/**
 * A PUT's body from its headers, checked before any byte is read. With Content-Length it fills the
 * range exactly: Content-Range's, or from offset 0. Chunked (Transfer-Encoding: chunked alone; the
 * connection refused a Content-Length beside it, RFC 9112 §6.3, and any other coding, §6.1) its length is known only at its end: with Content-Range it
 * must fill that range; without, it goes from offset 0 and may be as long as the array or shorter, as a
 * Content-Length body or a WriteArray stream may (the answer's bytes_written says what landed).
 */
function bodyLengthOf(exchange: HttpExchange, array: TensorArray): PutBody {
  const transferEncoding = exchange.headers['transfer-encoding'];
  const contentRange = exchange.headers['content-range'];
  // The connection decoded the chunked framing, and refused (501) any other coding, which would reach the array still coded.
  if (transferEncoding !== undefined) {
    if (contentRange === undefined) {
      const range = { start: 0, length: array.byteSize };
      return { range, exact: false, chunked: true, limitedBy: `the array's size, from offset 0`, expected: 'a chunked body through its last chunk' };
    }
    const range = parseContentRange(contentRange, array.byteSize);
    return { range, exact: true, chunked: true, limitedBy: `Content-Range ${contentRange}`, expected: `${range.length} bytes (Content-Range ${contentRange}) through the last chunk` };
  }
  const lengthHeader = exchange.headers['content-length'];
  if (lengthHeader === undefined) {
    throw invalidArgument('Content-Length', 'a Content-Length header, or Transfer-Encoding: chunked (a PUT with neither has no body)', '(none)');
  }
  const range = parseContentRange(contentRange, array.byteSize, Number(lengthHeader));
  return { range, exact: true, chunked: false, limitedBy: 'Content-Length', expected: `${range.length} bytes (Content-Length)` };
}

/**
 * A PUT's pieces are as large as a connection's body read buffer. Below --async-copy-threshold each
 * piece is copied into pool memory inline, straight from the buffer, and reading goes on at once; at
 * or above it the copy goes to the thread pool and the socket waits for it. So the buffer is the
 * largest power of two below the threshold, within 16 KiB–128 KiB (B2.put: 1 MiB reads, every piece
 * off the thread, ran 1.6–1.8 GB/s against 2.6 GB/s with 128 KiB; README "Performance").
 */
export function bodyReadBytesFor(asyncCopyThresholdBytes: number): number {
  let bytes = DEFAULT_BODY_READ_BYTES;
  while (bytes > MIN_BODY_READ_BYTES && bytes >= asyncCopyThresholdBytes) bytes /= 2;
  return bytes;
}

/**
 * Conditional request headers (RFC 9110 §13.1.1, §13.1.2). The data plane sends no validator (no ETag,
 * no Last-Modified), so an array matches only `*`: `If-Match: *` holds (the array exists) and any list
 * of entity tags fails, `If-None-Match: *` fails and a list of tags holds. A failed If-Match, or a failed
 * If-None-Match on a PUT, is PRECONDITION_FAILED (412) and the PUT writes nothing; a failed
 * If-None-Match on a GET or HEAD is 'not-modified' (304). If-Modified-Since and If-Unmodified-Since are
 * ignored, as RFC 9110 says for a resource with no modification date.
 */
function checkPreconditions(exchange: HttpExchange, array: TensorArray): 'proceed' | 'not-modified' {
  const ifMatch = exchange.headers['if-match'];
  if (ifMatch !== undefined && ifMatch.trim() !== '*') {
    throw new TensormemError(
      'FAILED_PRECONDITION',
      'PRECONDITION_FAILED',
      `If-Match: ${ifMatch} names no current version of array ${array.arrayId}: the data plane sends no entity tags, so only "If-Match: *" can hold; nothing was done`,
      { field: 'If-Match', value: ifMatch },
    );
  }
  const ifNoneMatch = exchange.headers['if-none-match'];
  if (ifNoneMatch !== undefined && ifNoneMatch.trim() === '*') {
    if (exchange.method === 'GET' || exchange.method === 'HEAD') return 'not-modified';
    throw new TensormemError('FAILED_PRECONDITION', 'PRECONDITION_FAILED', `If-None-Match: * holds only when the array does not exist, and array ${array.arrayId} does: nothing was written`, {
      field: 'If-None-Match',
      value: ifNoneMatch,
    });
  }
  return 'proceed';
}

function bearerTokenOf(exchange: HttpExchange): string {
  const value = exchange.headers.authorization;
  if (value === undefined) throw unauthenticated(`missing lease token: send "Authorization: Bearer <token>" (the token OpenLease returned; ${TENSORMEMCTL_TOKEN})`);
  const match = /^Bearer\s+(\S+)\s*$/i.exec(value);
  if (!match) throw unauthenticated('Authorization: expected "Bearer <token>"');
  return match[1];
}

/** The client closed the connection (or it broke) while its request was being served. */
function isConnectionGone(error: unknown, exchange: HttpExchange): boolean {
  if (error instanceof TensormemError) return false;
  const code = (error as NodeJS.ErrnoException)?.code;
  return code === 'ECONNRESET' || code === 'EPIPE' || code === 'ERR_STREAM_PREMATURE_CLOSE' || exchange.destroyed;
}
