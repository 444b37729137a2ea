/**
 * The data plane's HTTP/1.1 server side, on `net` (or `tls`) sockets rather than `node:http`.
 *
 * Why not `node:http`: its parser copies every body chunk into a new Buffer and passes it through a
 * Readable stream, so a 256 MiB PUT costs 4,096 allocations, copies and stream hops before a byte
 * reaches pool memory (README "Performance", B2.put). Here a plain TCP or unix connection reads into
 * buffers it owns and reuses (`net.Socket`'s `onread`), and a request body goes to its reader
 * straight from that buffer: the kernel's copy is the only one before the pool's.
 *
 * What it speaks: HTTP/1.1 and 1.0 requests with a Content-Length body or a chunked one (RFC 9112 §7.1,
 * ./chunked-body.ts: its data handed to the reader as views of the read buffer, extensions ignored,
 * trailers dropped but for the fields named in keptTrailers (HttpExchange.trailers), malformed framing failing readBody with a 400's error; a Content-Length beside a
 * Transfer-Encoding is refused, a coding before chunked (gzip, chunked) is 501 Not Implemented (RFC 9112
 * §6.1) and closes, and the connection closes after the answer to a chunked body in HTTP/1.0), keep-alive and pipelined requests (served one at a time, the next read only once the socket
 * has taken the whole answer before it), `Expect: 100-continue` (HTTP/1.1 only: an HTTP/1.0
 * request's is ignored, RFC 9110 §10.1.1), HEAD, absolute-form targets (read as their path and query).
 * A head over 16 KiB is 431 (414 when its request line alone is, RFC 9112 §3) and a malformed one (a CR or LF other than a CRLF line end among them, a NUL or other control byte but HTAB in a header value,
 * an HTTP/1.1 request without one valid Host,
 * a Transfer-Encoding whose last coding is not chunked, or with chunked twice, or beside a Content-Length) 400;
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
import { Server as NetServer, Socket, createServer as createNetServer } from 'node:net';
import { Server as TlsServer, TlsOptions, createServer as createTlsServer } from 'node:tls';
import { TensormemError } from '../errors';
import { httpErrorOf } from './http-errors';
import { ConnectionSettings, connectionWithOwnReadBuffers, Http1Connection } from './http1-connection';
import { httpDate, HttpExchange, HttpHandler } from './http-exchange';

export { MAX_HEAD_BYTES } from './http1-head';
export { BODY_CUT_SHORT, HttpExchange, type BodyReader, type HttpHandler } from './http-exchange';

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
  /** Chunked trailer fields (names, any case) the handler reads in HttpExchange.trailers; the others are dropped (default none). */
  keptTrailers?: readonly string[];
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
      keptTrailers: new Set((options.keptTrailers ?? []).map((name) => name.toLowerCase())),
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

