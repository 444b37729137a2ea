/**
 * The data plane's HTTP/1.1 server side, on `net` (or `tls`) sockets rather than `node:http`.
 *
 * Why not `node:http`: its parser copies every body chunk into a new Buffer and passes it through a
 * Readable stream, so a 256 MiB PUT costs 4,096 allocations, copies and stream hops before a byte
 * reaches pool memory (README "Performance", B2.put). Here a plain TCP or unix connection reads into
 * buffers it owns and reuses (`net.Socket`'s `onread`), and a request body goes to its reader
 * straight from that buffer: the kernel's copy is the only one before the pool's.
 *
 * What it speaks: HTTP/1.1 and 1.0 requests with a Content-Length body (a Transfer-Encoding body is not
 * framed here: the request reaches the handler, which refuses it, and the connection closes after the
 * answer), keep-alive and pipelined requests (served one at a time, the next read only once the socket
 * has taken the whole answer before it), `Expect: 100-continue` (HTTP/1.1 only: an HTTP/1.0
 * request's is ignored, RFC 9110 §10.1.1), HEAD, absolute-form targets (read as their path and query).
 * A head over 16 KiB is 431 and a malformed one (a CR or LF other than a CRLF line end among them, a NUL in a header value,
 * a Transfer-Encoding whose last coding is not chunked) 400;
 * both close the connection. An answer sent before the request's body was read closes the connection
 * after it (what the client still sends is read and dropped for up to 5 s first, so that a reset does
 * not destroy the answer in flight). An idle keep-alive connection is closed after 5 s without a
 * byte (a keep-alive answer says so: `Keep-Alive: timeout=5`); a head not complete 5 s after its
 * first byte is cut, however steadily it trickles in. Both 5 s limits (drop, head) are deadlines, not
 * idle timers. A request whose socket moves no byte either way
 * for `stallTimeoutMs` (a body that stops arriving, a reader that stops reading the answer) is cut: the
 * socket is destroyed, so the exchange's close listeners run and a body still being read fails.
 *
 * At most `maxConnections` connections are open at once (each holds a file descriptor, socket buffers
 * in the kernel and up to 16 KiB + a body read buffer here, and the daemon's gRPC side needs
 * descriptors too): one more is answered 503 (JSON, reason TOO_MANY_CONNECTIONS, Connection: close)
 * and closed; what it sends meanwhile is read and dropped for up to 1 s so that the answer is not lost
 * to a reset, and past 64 such answers in flight further ones are closed with no answer. A TLS
 * connection counts from its TCP connect, and one past the cap is closed before the handshake, with no
 * answer; a handshake that fails, or is not done the head timeout (5 s) after the connect, closes its connection.
 *
 * TLS connections (`tls.Server`) read through 'data' events: the same framing, one copy more.
 */
import { STATUS_CODES } from 'node:http';
import { Server as NetServer, Socket, createServer as createNetServer } from 'node:net';
import { Server as TlsServer, TlsOptions, createServer as createTlsServer } from 'node:tls';
import { TensormemError } from '../errors';
import { httpErrorOf } from './http-errors';

/** Largest request head (request line and headers) accepted. */
export const MAX_HEAD_BYTES = 16 * 1024;
/** How long a connection may sit between requests without a byte (an idle timer: each byte restarts it). */
export const KEEP_ALIVE_TIMEOUT_MS = 5_000;
/** A request head must be complete this long after its first byte (a deadline: bytes do not extend it). */
export const HEAD_TIMEOUT_MS = 5_000;
/** How long what a client still sends after an early answer is read and dropped before the connection is cut (a deadline). */
export const DRAIN_TIMEOUT_MS = 5_000;
/**
 * The buffer a connection reads a body into, unless Http1ServerOptions say otherwise (its own, kept
 * for its life once it has received a body): 2048 reads per 256 MiB.
 */
export const DEFAULT_BODY_READ_BYTES = 128 * 1024;
const HEAD_END = Buffer.from('\r\n\r\n');
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

let dateSecond = -1;
let dateText = '';

/**
 * Now as an HTTP-date (IMF-fixdate, RFC 9110 §5.6.7), made at most once a second: an origin server with
 * a clock MUST send Date in every 2xx, 3xx and 4xx answer (RFC 9110 §6.6.1).
 */
function httpDate(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateText = new Date(second * 1000).toUTCString();
  }
  return dateText;
}

/** Called once per request, with its head parsed; it must end (or destroy) the exchange, and not throw (a throw only cuts the connection). */
export type HttpHandler = (exchange: HttpExchange) => void;

/** Reads one piece of a body; the piece is valid only until this returns or the promise it returns settles. */
export type BodyReader = (piece: Uint8Array) => void | Promise<void>;

/** How long a request may go without its socket moving a byte, unless Http1ServerOptions say otherwise. */
export const DEFAULT_STALL_TIMEOUT_MS = 60_000;
/** Most connections open at once, unless Http1ServerOptions say otherwise (0 = no cap). */
export const DEFAULT_MAX_CONNECTIONS = 1024;
/** How long a connection refused for the cap is read and dropped after its 503 before it is cut (a deadline). */
export const REFUSAL_LINGER_MS = 1_000;
/** Refused connections being answered at once; past this a refused connection is closed with no answer. */
export const MAX_LINGERING_REFUSALS = 64;

export interface Http1ServerOptions {
  /** Serve TLS with these options; plain TCP (or a unix socket) without. */
  tls?: TlsOptions;
  /** A request whose socket moves no byte for this long is cut (default DEFAULT_STALL_TIMEOUT_MS). */
  stallTimeoutMs?: number;
  /** Told about each request cut for a stall, before its socket is destroyed. */
  onStall?: (exchange: HttpExchange) => void;
  /** Size of a connection's body read buffer, so the largest piece a BodyReader gets (default DEFAULT_BODY_READ_BYTES). */
  bodyReadBytes?: number;
  /** Idle time between requests before a connection is closed (default KEEP_ALIVE_TIMEOUT_MS). */
  keepAliveTimeoutMs?: number;
  /** Deadline for a request head, from its first byte (default HEAD_TIMEOUT_MS). */
  headTimeoutMs?: number;
  /** Deadline for reading and dropping what a client sends after an early answer (default DRAIN_TIMEOUT_MS). */
  drainTimeoutMs?: number;
  /** Most connections open at once; one more is refused (default DEFAULT_MAX_CONNECTIONS; 0 = no cap). */
  maxConnections?: number;
  /** Told about each connection refused for maxConnections (`answered`: whether it got the 503). */
  onRefused?: (answered: boolean) => void;
}

/** What a connection needs of its server: the handler and how a stalled request is cut. */
interface ConnectionSettings {
  handler: HttpHandler;
  stallTimeoutMs: number;
  bodyReadBytes: number;
  keepAliveTimeoutMs: number;
  headTimeoutMs: number;
  drainTimeoutMs: number;
  onStall?: (exchange: HttpExchange) => void;
}

/** A listening socket serving HTTP/1.1 to `handler` (plain, or TLS when options.tls is given). */
export class Http1Server {
  readonly server: NetServer | TlsServer;
  readonly maxConnections: number;
  /** Connections refused for maxConnections since the server was made. */
  refusedTotal = 0;
  private readonly connections = new Set<Http1Connection>();
  /** TLS: the TCP sockets open, handshaking or served (the cap counts them from the connect). */
  private readonly tlsSockets = new Set<Socket>();
  /** Refused connections still being answered (read and dropped until their linger deadline). */
  private readonly refusing = new Set<Socket>();
  private readonly onRefused?: (answered: boolean) => void;

  constructor(handler: HttpHandler, options: Http1ServerOptions = {}) {
    this.maxConnections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    this.onRefused = options.onRefused;
    const settings: ConnectionSettings = {
      handler,
      stallTimeoutMs: options.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS,
      bodyReadBytes: options.bodyReadBytes ?? DEFAULT_BODY_READ_BYTES,
      keepAliveTimeoutMs: options.keepAliveTimeoutMs ?? KEEP_ALIVE_TIMEOUT_MS,
      headTimeoutMs: options.headTimeoutMs ?? HEAD_TIMEOUT_MS,
      drainTimeoutMs: options.drainTimeoutMs ?? DRAIN_TIMEOUT_MS,
      onStall: options.onStall,
    };
    if (options.tls) {
      const tlsServer = createTlsServer({ handshakeTimeout: settings.headTimeoutMs, ...options.tls, allowHalfOpen: true }, (socket) => this.track(new Http1Connection(socket, settings, false)));
      // A handshake not done the head timeout after the connect (node's handshakeTimeout), or failed, is told here and nowhere else:
      // node leaves the socket open. With allowHalfOpen, a client that connects and closes before its
      // handshake (a TCP health check, a port scan) left the daemon's socket open for good, each one
      // a file descriptor, until the daemon could accept nothing more, gRPC included.
      tlsServer.on('tlsClientError', (_error: Error, socket: Socket) => socket.destroy());
      // 'connection' comes with the TCP connect, before the handshake (the listener tls.Server
      // registers first has wrapped the socket by now; destroying it ends both).
      tlsServer.on('connection', (raw: Socket) => {
        if (this.full(this.tlsSockets.size)) {
          this.refused(false);
          raw.destroy();
          return;
        }
        this.tlsSockets.add(raw);
        raw.once('close', () => this.tlsSockets.delete(raw));
      });
      this.server = tlsServer;
    } else {
      this.server = createNetServer({ pauseOnConnect: true, allowHalfOpen: true }, (socket) => {
        if (this.full(this.connections.size)) {
          this.refuse(socket);
          return;
        }
        this.track(connectionWithOwnReadBuffers(socket, settings) ?? new Http1Connection(socket, settings, false));
      });
    }
  }

  /** Connections open now (TLS: from the TCP connect, handshakes included); refused ones not counted. */
  get openConnections(): number {
    return this.server instanceof TlsServer ? this.tlsSockets.size : this.connections.size;
  }

  private full(open: number): boolean {
    return this.maxConnections > 0 && open >= this.maxConnections;
  }

  private refused(answered: boolean): void {
    this.refusedTotal++;
    this.onRefused?.(answered);
  }

  /**
   * Answers a connection past the cap with 503 and closes it. What the client sends meanwhile (its
   * request) is read and dropped until it closes its side or REFUSAL_LINGER_MS pass: closing with
   * unread bytes would send a reset that can destroy the answer in flight. Past MAX_LINGERING_REFUSALS
   * being answered at once (a flood), a refused connection is closed at once, with no answer.
   */
  private refuse(socket: Socket): void {
    if (this.refusing.size >= MAX_LINGERING_REFUSALS) {
      this.refused(false);
      socket.destroy();
      return;
    }
    this.refused(true);
    this.refusing.add(socket);
    const body = JSON.stringify(
      httpErrorOf(
        new TensormemError('UNAVAILABLE', 'TOO_MANY_CONNECTIONS', `the data plane has ${this.maxConnections} connections open, its limit (--data-max-connections): retry later, or use gRPC`, {
          max_connections: String(this.maxConnections),
        }),
      ),
    );
    const timer = setTimeout(() => socket.destroy(), REFUSAL_LINGER_MS);
    socket.once('close', () => {
      clearTimeout(timer);
      this.refusing.delete(socket);
    });
    socket.on('error', () => socket.destroy());
    socket.on('end', () => socket.destroy());
    socket.on('data', () => undefined);
    socket.end(`HTTP/1.1 503 Service Unavailable\r\nDate: ${httpDate()}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n${body}`);
    socket.resume();
  }

  private track(connection: Http1Connection): void {
    this.connections.add(connection);
    connection.socket.once('close', () => this.connections.delete(connection));
  }

  /** Closes connections that are between requests (no request, not even part of a head, in hand). */
  closeIdleConnections(): void {
    for (const connection of this.connections) if (connection.isIdle) connection.socket.destroy();
  }

  /** Closes every connection: served, being refused, and (TLS) still in its handshake, which server.close() would wait for. */
  closeAllConnections(): void {
    for (const connection of this.connections) connection.socket.destroy();
    for (const socket of this.refusing) socket.destroy();
    for (const socket of this.tlsSockets) socket.destroy();
  }
}

/**
 * The accepted socket's handle re-wrapped in a `net.Socket` with `onread`, so that reads land in the
 * connection's own buffers instead of a new Buffer each. `onread` is public API, but `net.Server` has
 * no option to give it to accepted sockets, so this passes the handle to the Socket constructor as
 * node's own net.Server does (the `handle` option). Undefined where the handle cannot take a user
 * buffer (the caller then reads through 'data' events).
 */
function connectionWithOwnReadBuffers(raw: Socket, settings: ConnectionSettings): Http1Connection | undefined {
  const internal = raw as unknown as { _handle?: { useUserBuffer?: unknown } | null };
  const handle = internal._handle;
  if (!handle || typeof handle.useUserBuffer !== 'function') return undefined;
  let connection: Http1Connection | undefined;
  const socket = new Socket({
    handle,
    allowHalfOpen: true,
    onread: {
      buffer: () => connection?.readBuffer() ?? Buffer.allocUnsafe(MAX_HEAD_BYTES),
      callback: (bytes: number, buffer: Uint8Array) => connection!.received(buffer.subarray(0, bytes) as Buffer, true),
    },
  } as ConstructorParameters<typeof Socket>[0] & { handle: unknown });
  // The first wrapper no longer owns the handle: destroying it releases its place in the server's
  // connection count (or server.close() would wait for it forever) and closes nothing.
  internal._handle = null;
  raw.destroy();
  connection = new Http1Connection(socket, settings, true);
  return connection;
}

/** head: reading a request head; request: one exchange in hand; draining: answered early, reading and dropping what the client still sends before closing. */
type ConnectionState = 'head' | 'request' | 'draining' | 'closed';

/** One client connection: heads parsed, bodies framed, one exchange at a time. */
class Http1Connection {
  private state: ConnectionState = 'head';
  /** Bytes received and not yet consumed (part of a head, a body that arrived early, the next request). */
  private pending?: Buffer;
  private exchange?: HttpExchange;
  private bodyRemaining = 0;
  private reader?: BodyReader;
  private readerBusy = false;
  private bodyDone?: { resolve: (bytes: number) => void; reject: (error: Error) => void; bytes: number };
  private consuming = false;
  private ended = false;
  private headBuffer?: Buffer;
  private bodyBuffer?: Buffer;
  /** Cuts a head not complete by its deadline; set at its first byte, cleared when it is complete. */
  private headTimer?: NodeJS.Timeout;
  /** Ends the read-and-drop of a draining connection. */
  private drainTimer?: NodeJS.Timeout;
  /** The drain's deadline passed while the answer was still going out: nothing more is read. */
  private dropDone = false;
  /**
   * A keep-alive answer is still going out (the socket has not taken all of it): the next request is
   * not read until it has, so a client that pipelines requests and never reads the answers cannot
   * make the daemon queue answers (and lend views of pool memory) without end.
   */
  private answerGoingOut = false;

  constructor(
    readonly socket: Socket,
    private readonly settings: ConnectionSettings,
    ownBuffers: boolean,
  ) {
    socket.setNoDelay(true);
    socket.setTimeout(settings.keepAliveTimeoutMs);
    socket.on('timeout', () => {
      // A request being read or answered, or an answer still queued on the socket, has stalled;
      // otherwise the connection sat idle between requests or in the drain.
      const stalled = this.state === 'request' || (this.state !== 'closed' && socket.writableLength > 0);
      if (stalled && this.exchange) this.settings.onStall?.(this.exchange);
      socket.destroy();
    });
    socket.on('error', () => socket.destroy());
    socket.on('end', () => {
      this.ended = true;
      this.pump();
    });
    socket.once('close', () => this.closed());
    if (!ownBuffers) {
      socket.on('data', (chunk: Buffer) => {
        if (!this.received(chunk, false)) socket.pause();
      });
      socket.resume();
    }
  }

  /** Reading requests (not draining or closed). */
  private get serving(): boolean {
    return this.state === 'head' || this.state === 'request';
  }

  /** The idle time between requests, in whole seconds, as a Keep-Alive header says it. */
  get keepAliveTimeoutSeconds(): number {
    return Math.floor(this.settings.keepAliveTimeoutMs / 1000);
  }

  /** Between requests, with no answer still going out and no part of a next request in hand. */
  get isIdle(): boolean {
    return this.state === 'head' && this.pending === undefined && !this.answerGoingOut;
  }

  /** The buffer the next read lands in (onread mode). */
  readBuffer(): Buffer {
    if (this.state === 'request' && this.bodyRemaining > 0) return (this.bodyBuffer ??= Buffer.allocUnsafeSlow(this.settings.bodyReadBytes));
    return (this.headBuffer ??= Buffer.allocUnsafeSlow(MAX_HEAD_BYTES));
  }

  /** Bytes from the socket (`reused`: in a buffer the next read overwrites); false to stop reading. */
  received(chunk: Buffer, reused: boolean): boolean {
    this.consuming = true;
    try {
      this.consume(chunk, reused);
    } finally {
      this.consuming = false;
    }
    return this.wantsBytes();
  }

  private consume(chunk: Buffer, reused: boolean): void {
    let offset = 0;
    while (offset < chunk.byteLength && this.serving) {
      if (this.state === 'head') {
        if (this.answerGoingOut) break;
        offset = this.consumeHead(chunk, offset);
      } else if (this.bodyRemaining > 0 && this.reader && !this.readerBusy) {
        const piece = chunk.subarray(offset, offset + Math.min(this.bodyRemaining, chunk.byteLength - offset));
        offset += piece.byteLength;
        this.deliver(piece);
      } else {
        break;
      }
    }
    if (offset < chunk.byteLength && this.serving) this.stash(chunk.subarray(offset), reused);
  }

  /** Consumes head bytes from `chunk` at `offset`; returns the offset after what it used. */
  private consumeHead(chunk: Buffer, offset: number): number {
    const before = this.pending?.byteLength ?? 0;
    const head = before > 0 ? Buffer.concat([this.pending!, chunk.subarray(offset)]) : chunk.subarray(offset);
    this.pending = undefined;
    // Bare line breaks between requests are allowed (RFC 9112 §2.2).
    let start = 0;
    while (start < head.byteLength && (head[start] === 0x0d || head[start] === 0x0a)) start++;
    const end = head.indexOf(HEAD_END, start);
    if (end < 0) {
      if (head.byteLength - start > MAX_HEAD_BYTES) {
        this.refuse(431, `the request head is over ${MAX_HEAD_BYTES} bytes`);
        return chunk.byteLength;
      }
      if (start < head.byteLength) this.pending = Buffer.from(head.subarray(start));
      // The deadline runs from the first byte, bare line breaks included: a peer sending only those
      // would otherwise hold the connection forever (each byte restarts the idle timer).
      this.headTimer ??= setTimeout(() => this.socket.destroy(), this.settings.headTimeoutMs);
      return chunk.byteLength;
    }
    if (end - start > MAX_HEAD_BYTES) {
      this.refuse(431, `the request head is over ${MAX_HEAD_BYTES} bytes`);
      return chunk.byteLength;
    }
    const parsed = parseHead(head.toString('latin1', start, end));
    if ('malformed' in parsed) {
      this.refuse(400, parsed.malformed, parsed.field === undefined ? {} : { field: parsed.field });
      return chunk.byteLength;
    }
    this.begin(parsed);
    return offset + (end + HEAD_END.byteLength - before);
  }

  private begin(head: RequestHead): void {
    this.clearHeadTimer();
    this.state = 'request';
    this.socket.setTimeout(this.settings.stallTimeoutMs);
    this.bodyRemaining = head.contentLength;
    this.exchange = new HttpExchange(this, head);
    try {
      this.settings.handler(this.exchange);
    } catch {
      // A handler must answer through the exchange; one that throws leaves no answer to give. Thrown
      // from here the error would escape into the socket's read callback and end the process.
      this.exchange.destroy();
    }
  }

  /** Hands `piece` to the reader; a promise from it holds reading until it settles. */
  private deliver(piece: Buffer): void {
    this.bodyRemaining -= piece.byteLength;
    this.bodyDone!.bytes += piece.byteLength;
    let result: void | Promise<void>;
    try {
      result = this.reader!(piece);
    } catch (error) {
      this.readFailed(error as Error);
      return;
    }
    if (result && typeof (result as Promise<void>).then === 'function') {
      this.readerBusy = true;
      (result as Promise<void>).then(
        () => {
          this.readerBusy = false;
          this.afterPiece();
          this.pump();
        },
        (error: Error) => {
          this.readerBusy = false;
          this.readFailed(error);
        },
      );
      return;
    }
    this.afterPiece();
  }

  private afterPiece(): void {
    if (this.bodyRemaining > 0 || !this.bodyDone) return;
    const done = this.bodyDone;
    this.reader = undefined;
    this.bodyDone = undefined;
    done.resolve(done.bytes);
  }

  private readFailed(error: Error): void {
    const done = this.bodyDone;
    this.reader = undefined;
    this.bodyDone = undefined;
    done?.reject(error);
  }

  /** Keeps bytes that cannot be consumed now (a copy when they sit in a buffer the next read reuses). */
  private stash(bytes: Buffer, reused: boolean): void {
    const kept = reused ? Buffer.from(bytes) : bytes;
    this.pending = this.pending ? Buffer.concat([this.pending, kept]) : kept;
  }

  private wantsBytes(): boolean {
    if (this.state === 'head') return !this.answerGoingOut;
    if (this.state === 'draining') return !this.dropDone;
    if (this.state !== 'request') return false;
    return this.bodyRemaining > 0 && this.reader !== undefined && !this.readerBusy;
  }

  /** Consumes what is pending, then reads on or holds, as the state asks. */
  private pump(): void {
    if (this.consuming || this.state === 'closed' || this.state === 'draining' || this.socket.destroyed) return;
    if (this.answerGoingOut) {
      // answerTaken() pumps again; an end of input meanwhile is handled then, after what is pending.
      this.socket.pause();
      return;
    }
    if (this.pending && this.wantsBytes()) {
      const pending = this.pending;
      this.pending = undefined;
      this.received(pending, false);
    }
    if (this.ended) {
      // Nothing more will come: a body still awaited never arrives; between requests the connection ends.
      if (this.bodyDone && !this.readerBusy && this.pending === undefined) this.readFailed(bodyCutShort(this.bodyDone.bytes + this.bodyRemaining, this.bodyDone.bytes));
      if (this.state === 'head') this.drain();
      return;
    }
    if (this.wantsBytes()) this.socket.resume();
    else this.socket.pause();
  }

  /** HttpExchange.readBody. */
  readBody(reader: BodyReader): Promise<number> {
    if (this.bodyDone || this.state !== 'request') return Promise.reject(new Error('the request body is being read already, or the request is over'));
    if (this.bodyRemaining === 0) return Promise.resolve(0);
    if (this.ended && !this.pending) return Promise.reject(bodyCutShort(this.bodyRemaining, 0));
    return new Promise<number>((resolve, reject) => {
      this.reader = reader;
      this.bodyDone = { resolve, reject, bytes: 0 };
      this.pump();
    });
  }

  /** Whether the connection must close after this exchange's answer. */
  closesAfter(exchange: HttpExchange): boolean {
    return !exchange.keepAlive || this.bodyRemaining > 0 || this.ended;
  }

  /** HttpExchange.end, once the answer is written: the next request, or the end of the connection. */
  finished(exchange: HttpExchange, close: boolean): void {
    if (this.exchange !== exchange || this.state !== 'request') return;
    if (close || this.bodyRemaining > 0) {
      this.drain();
      return;
    }
    this.state = 'head';
    // Until the socket has taken the whole answer, a reader that stops reading it is a stall, and the
    // next request waits (answerTaken).
    this.answerGoingOut = true;
    this.socket.setTimeout(this.settings.stallTimeoutMs);
    this.pump();
  }

  /** HttpExchange.end, once the socket has taken the whole answer (or is gone): the next request may be read. */
  answerTaken(): void {
    if (!this.answerGoingOut) return;
    this.answerGoingOut = false;
    if (this.state !== 'head') return;
    this.socket.setTimeout(this.settings.keepAliveTimeoutMs);
    this.pump();
  }

  private refuse(code: number, message: string, metadata: Record<string, string> = {}): void {
    const body = JSON.stringify({ code, status: code === 431 ? 'RESOURCE_EXHAUSTED' : 'INVALID_ARGUMENT', reason: code === 431 ? 'REQUEST_HEAD_TOO_LARGE' : 'MALFORMED_REQUEST', message, metadata });
    this.drain(`HTTP/1.1 ${code} ${STATUS_CODES[code]}\r\nDate: ${httpDate()}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  }

  /**
   * Ends the connection after `last`: our side closes at once; what the client still sends is read and
   * dropped until it closes its side (then the socket is gone), for drainTimeoutMs at most (a deadline
   * from now, however steadily bytes arrive). An answer still going out at the deadline (a large GET's
   * last pieces with Connection: close) is not cut by it: reading stops until the socket has taken the
   * whole answer (a reader that stops meanwhile is a stall), then what the client sends is read and
   * dropped for drainTimeoutMs more, so that closing with unread bytes (a reset) does not destroy the
   * end of the answer still in the kernel's buffers.
   */
  private drain(last?: string): void {
    if (this.state === 'draining' || this.state === 'closed') return;
    this.clearHeadTimer();
    this.state = 'draining';
    this.pending = undefined;
    if (this.bodyDone) this.readFailed(prematureClose());
    if (last !== undefined) this.socket.end(last);
    else this.socket.end();
    this.socket.setTimeout(this.socket.writableLength > 0 ? this.settings.stallTimeoutMs : this.settings.keepAliveTimeoutMs);
    if (this.ended) {
      this.socket.destroySoon();
      return;
    }
    this.drainTimer = setTimeout(() => this.drainDeadline(), this.settings.drainTimeoutMs);
    this.socket.resume();
  }

  private drainDeadline(): void {
    this.drainTimer = undefined;
    if (this.socket.writableFinished) {
      this.socket.destroy();
      return;
    }
    this.dropDone = true;
    this.socket.pause();
    this.socket.once('finish', () => {
      if (this.state !== 'draining') return;
      this.dropDone = false;
      this.socket.resume();
      this.drainTimer = setTimeout(() => this.socket.destroy(), this.settings.drainTimeoutMs);
    });
  }

  private clearHeadTimer(): void {
    if (this.headTimer === undefined) return;
    clearTimeout(this.headTimer);
    this.headTimer = undefined;
  }

  private closed(): void {
    this.clearHeadTimer();
    if (this.drainTimer !== undefined) clearTimeout(this.drainTimer);
    this.drainTimer = undefined;
    this.state = 'closed';
    if (this.bodyDone) this.readFailed(prematureClose());
    this.exchange?.connectionClosed();
    this.exchange = undefined;
  }
}

/** The code of readBody's rejection when the client ended its side of the connection (a FIN) before the whole body: it can still be answered. */
export const BODY_CUT_SHORT = 'ERR_BODY_CUT_SHORT';

function bodyCutShort(expected: number, received: number): Error & { code: string; bytesReceived: number } {
  return Object.assign(new Error(`the client ended its side of the connection after ${received} of the body's ${expected} bytes`), { code: BODY_CUT_SHORT, bytesReceived: received });
}

function prematureClose(): Error {
  return Object.assign(new Error('the connection closed before the whole request body arrived'), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
}

interface RequestHead {
  method: string;
  url: string;
  /** Lower-case names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  contentLength: number;
  keepAlive: boolean;
  expectsContinue: boolean;
}

/** Why a head is malformed, and what is at fault: a header's name, or "request line" / "header line" for a line that names none. */
interface MalformedHead {
  malformed: string;
  field?: string;
}

/** Parses a request head (without its final blank line). */
function parseHead(text: string): RequestHead | MalformedHead {
  // Lines end in CRLF only; a CR or LF anywhere else is malformed (RFC 9112 §2.2 lets a server reject
  // a bare CR, and a bare LF read as a line end by one parser and not by another smuggles requests).
  const lines = text.split('\r\n');
  const requestLine = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+) (\S+) HTTP\/1\.([01])$/.exec(lines[0]);
  if (!requestLine) return { malformed: `malformed request line ${JSON.stringify(lines[0].slice(0, 200))}: expected "METHOD /path HTTP/1.1"`, field: 'request line' };
  const headers: Record<string, string> = Object.create(null) as Record<string, string>;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i];
    const colon = line.indexOf(':');
    const name = colon > 0 ? line.slice(0, colon) : '';
    if (!TOKEN.test(name)) return { malformed: `malformed header line ${JSON.stringify(line.slice(0, 200))}: expected "Name: value"`, field: 'header line' };
    const rawValue = line.slice(colon + 1);
    const shownValue = () => JSON.stringify(rawValue.replace(/^[ \t]+|[ \t]+$/g, '').slice(0, 200));
    if (/[\r\n]/.test(rawValue)) {
      return { malformed: `header ${name}: a CR or LF is allowed only in the CRLF that ends a line, not inside the value ${shownValue()}`, field: name };
    }
    // RFC 9110 §5.5: a NUL in a field value MUST be rejected (or replaced): parsers that stop at it read
    // a different value than those that do not.
    if (rawValue.includes('\0')) return { malformed: `header ${name}: a NUL byte is not allowed in a header value, as in ${shownValue()}`, field: name };
    const key = name.toLowerCase();
    const value = rawValue.trim();
    headers[key] = key in headers ? `${headers[key]}, ${value}` : value;
  }
  let contentLength = 0;
  const lengthHeader = headers['content-length'];
  if (lengthHeader !== undefined) {
    if (!/^\d+$/.test(lengthHeader)) return { malformed: `Content-Length must be one decimal number, not ${JSON.stringify(lengthHeader.slice(0, 100))}`, field: 'Content-Length' };
    // Leading zeros are the same number (RFC 9110 §8.6: 1*DIGIT). Past 15 digits a Number would round,
    // and no array is that large (10^15 bytes is 888 TiB): refused, saying so.
    const digits = lengthHeader.replace(/^0+(?=\d)/, '');
    if (digits.length > 15) return { malformed: `Content-Length ${JSON.stringify(lengthHeader.slice(0, 100))} has more than 15 digits: no array holds that many bytes`, field: 'Content-Length' };
    contentLength = Number(digits);
  }
  // A request whose Transfer-Encoding does not end in chunked has no length anyone can determine: RFC
  // 9112 §6.3 says 400 and close. (One that ends in chunked is not framed here either: it reaches the
  // handler and the connection closes after the answer.) Empty list elements ("chunked," or two header
  // lines, one of them empty) are no coding (RFC 9110 §5.6.1.2): the last coding is the last one named.
  const transferEncoding = headers['transfer-encoding'];
  const lastCoding = transferEncoding === undefined ? undefined : listElements(transferEncoding).pop();
  if (transferEncoding !== undefined && lastCoding?.toLowerCase() !== 'chunked') {
    return { malformed: `Transfer-Encoding ${JSON.stringify(transferEncoding.slice(0, 100))} does not end in chunked, so the body's length cannot be determined`, field: 'Transfer-Encoding' };
  }
  const connection = (headers.connection ?? '').toLowerCase();
  const keepAlive = requestLine[3] === '1' ? !/\bclose\b/.test(connection) : /\bkeep-alive\b/.test(connection);
  return {
    method: requestLine[1],
    url: originForm(requestLine[2]),
    headers,
    contentLength: headers['transfer-encoding'] !== undefined ? 0 : contentLength,
    keepAlive: keepAlive && headers['transfer-encoding'] === undefined,
    // An HTTP/1.0 client knows no interim answers: it would read "100 Continue" as the answer to its
    // request. RFC 9110 §10.1.1: a server MUST ignore a 100-continue expectation in an HTTP/1.0 request.
    expectsContinue: requestLine[3] === '1' && (headers.expect ?? '').toLowerCase() === '100-continue',
  };
}

/**
 * The elements of a header's comma-separated list, trimmed, without the empty ones ("a,", ", a" or two
 * header lines, one empty), which a recipient MUST ignore (RFC 9110 §5.6.1.2).
 */
export function listElements(value: string): string[] {
  return value
    .split(',')
    .map((element) => element.trim())
    .filter((element) => element !== '');
}

/**
 * The request target as a path and query. A server MUST accept the absolute-form
 * (`http://host:port/path?query`, RFC 9112 §3.2.2), which a client configured to use the daemon as its
 * proxy sends; its authority is not ours to check (no virtual hosts), so only the path and query are
 * kept, `/` when it has no path. Any other form (origin, asterisk, authority) is left as it is.
 */
function originForm(target: string): string {
  const absolute = /^https?:\/\/[^/?#]*/i.exec(target);
  if (!absolute) return target;
  const rest = target.slice(absolute[0].length);
  return rest.startsWith('/') ? rest : `/${rest}`;
}

/** One request and its answer: the subset of node:http's IncomingMessage and ServerResponse the data plane uses. */
export class HttpExchange {
  readonly method: string;
  readonly url: string;
  readonly headers: Readonly<Record<string, string | undefined>>;
  readonly expectsContinue: boolean;
  statusCode = 200;
  private readonly responseHeaders = new Map<string, [string, string]>();
  private sentHead = false;
  private done = false;
  private gone = false;
  private readonly closeListeners: Array<() => void> = [];
  private closeNotified = false;

  constructor(
    private readonly connection: Http1Connection,
    private readonly head: RequestHead,
  ) {
    this.method = head.method;
    this.url = head.url;
    this.headers = head.headers;
    this.expectsContinue = head.expectsContinue;
  }

  get keepAlive(): boolean {
    return this.head.keepAlive && !/\bclose\b/i.test(this.responseHeaders.get('connection')?.[1] ?? '');
  }

  get headersSent(): boolean {
    return this.sentHead;
  }

  /** Whether the connection went away before the answer was complete (its socket destroyed, even before its 'close'). */
  get destroyed(): boolean {
    return this.gone || (!this.done && this.connection.socket.destroyed);
  }

  setHeader(name: string, value: string | number): void {
    this.responseHeaders.set(name.toLowerCase(), [name, String(value)]);
  }

  /** Drops every response header set so far (before the head is sent), e.g. a GET's before an error answer. */
  clearHeaders(): void {
    if (!this.sentHead) this.responseHeaders.clear();
  }

  /** "100 Continue": the client may send the body. */
  writeContinue(): void {
    if (!this.sentHead && !this.gone) this.connection.socket.write('HTTP/1.1 100 Continue\r\n\r\n');
  }

  /**
   * Reads the request body (Content-Length bytes), handing `reader` each piece as it arrives; resolves
   * to the bytes read. Rejects with code BODY_CUT_SHORT (and bytesReceived) when the client's input
   * ends first (its FIN: a half-close, after which the answer still reaches it, or a close), with code
   * ERR_STREAM_PREMATURE_CLOSE when the connection is gone first (reset, cut, or answered early), or
   * with what the reader threw.
   */
  readBody(reader: BodyReader): Promise<number> {
    return this.connection.readBody(reader);
  }

  /** Writes part of the body (the head first); `callback` once the socket has taken it. */
  write(data: Uint8Array | string, callback?: (error?: Error | null) => void): boolean {
    this.writeHead();
    return this.connection.socket.write(data, callback);
  }

  /**
   * Ends the answer (the head first). With `data` the Content-Length is that of `data`, whatever was
   * set before; without it, the one set (a body written with write()), or 0.
   */
  end(data?: string | Uint8Array): void {
    if (this.done || this.gone) return;
    this.done = true;
    if (!this.sentHead && (data !== undefined || !this.responseHeaders.has('content-length'))) this.setHeader('Content-Length', data === undefined ? 0 : Buffer.byteLength(data));
    this.writeHead();
    const close = this.connection.closesAfter(this);
    const socket = this.connection.socket;
    if (data !== undefined && this.method !== 'HEAD') socket.write(data);
    // The answer is complete once the socket has taken it; then the connection moves on.
    socket.write('', () => {
      this.connection.answerTaken();
      this.notifyClose();
    });
    this.connection.finished(this, close);
  }

  destroy(): void {
    this.connection.socket.destroy();
  }

  /** Runs `listener` once, when the answer has been taken by the socket or the connection is gone. */
  onClose(listener: () => void): void {
    if (this.closeNotified) listener();
    else this.closeListeners.push(listener);
  }

  connectionClosed(): void {
    if (!this.done) this.gone = true;
    this.notifyClose();
  }

  private notifyClose(): void {
    this.closeNotified = true;
    for (const listener of this.closeListeners.splice(0)) listener();
  }

  private writeHead(): void {
    if (this.sentHead) return;
    // Said as the head goes out; a reason found later (the client ends its side) still closes after the answer.
    if (!this.responseHeaders.has('connection')) {
      const closes = this.connection.closesAfter(this);
      this.setHeader('Connection', closes ? 'close' : 'keep-alive');
      // How long the connection may sit idle before it is closed. A pooling client that is not told
      // keeps the connection by its own timer: Node's http.globalAgent (5 s, the same as ours) sent its
      // next request just as the daemon closed the connection and failed with "socket hang up". Node's
      // agent drops a connection 1 s before the hint, undici's too; others ignore it.
      if (!closes) this.setHeader('Keep-Alive', `timeout=${this.connection.keepAliveTimeoutSeconds}`);
    }
    this.sentHead = true;
    let head = `HTTP/1.1 ${this.statusCode} ${STATUS_CODES[this.statusCode] ?? 'Unknown'}\r\n`;
    if (!this.responseHeaders.has('date')) head += `Date: ${httpDate()}\r\n`;
    for (const [name, value] of this.responseHeaders.values()) head += `${name}: ${value}\r\n`;
    this.connection.socket.write(`${head}\r\n`, 'latin1');
  }
}
