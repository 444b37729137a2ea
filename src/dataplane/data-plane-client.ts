/**
 * A minimal HTTP/1.1 client for the data plane, on `net` rather than `http`: a GET reads the body
 * straight into the destination buffer (`onread` with a buffer function), with no intermediate Buffer
 * per chunk, and a PUT writes the caller's bytes to the socket as they are (no copy). With a pool
 * (TransferOptions.connections, one per TensormemClient) a transfer reuses an idle keep-alive
 * connection to the endpoint (data-plane-connections.ts); without one it has a connection of its own
 * and says `Connection: close`. PUT sends `Expect: 100-continue` so a refusal (wrong token, range past
 * the end) comes back before the body is sent (the body goes after EXPECT_CONTINUE_WAIT_MS without a 100). Plain http:// and unix: only.
 */
import { isLocalAddress, parseHostPort, unixSocketPath } from '../config/listen-address';
import { crc32c, crc32cHex } from '../crc32c';
import { MAX_TIMER_MS } from '../long-timeout';
import type { HttpErrorBody } from './http-error-body';
import { DEFAULT_SERVER_KEEP_ALIVE_SECONDS, DataPlaneConnection, DataPlaneConnections, KEEP_ALIVE_MARGIN_MS } from './data-plane-connections';

/** How long a PUT waits for 100 Continue before it sends its body anyway (curl's --expect100-timeout default). */
export const EXPECT_CONTINUE_WAIT_MS = 1000;

/** The daemon answered with an error status; `body` is its JSON error. */
export class DataPlaneHttpError extends Error {
  constructor(readonly body: HttpErrorBody) {
    super(`HTTP ${body.code} ${body.status}${body.reason ? ` (${body.reason})` : ''}: ${body.message}`);
    this.name = 'DataPlaneHttpError';
  }
}

/**
 * The transfer failed before any response arrived (connection refused, reset, no such socket), or the
 * answer was not the daemon's (an error without its JSON body: a proxy's; a head the daemon never
 * sends: not HTTP/1.x, over 64 KiB, a body framed otherwise than by one Content-Length): safe to retry
 * another way.
 * A PUT whose body had begun (`bodyBytesSent` > 0) may have changed up to that many bytes of its
 * range: the daemon writes a body into the array as it arrives.
 */
export class DataPlaneConnectionError extends Error {
  constructor(
    message: string,
    override readonly cause?: unknown,
    /** Bytes of the request's body handed to the socket before the failure (0: none, or no body). */
    readonly bodyBytesSent = 0,
  ) {
    super(message);
    this.name = 'DataPlaneConnectionError';
  }
}

/**
 * The transfer failed after the answer's head arrived (connection reset or closed mid-body, no byte
 * moved for `stallTimeoutMs`): the request may have taken effect, so it is not retried another way.
 */
export class DataPlaneTransferError extends Error {
  constructor(
    message: string,
    override readonly cause?: unknown,
    /** The daemon's side ended the connection (a close or a reset) mid-answer, as it does when a change of the array cuts a GET: not a malformed answer or a stall. */
    readonly peerClosed = false,
    /** Bytes of a successful answer's body received into a GET's destination before the failure, at its start (0 for an error answer's body). */
    readonly bodyBytesReceived = 0,
    /** No byte moved either way for `stallTimeoutMs` (the connection was destroyed): the path to the data plane hung. */
    readonly stalled = false,
    /** The body's length as the head of a successful answer read into a GET's destination gave it (0 for an error answer): what `bodyBytesReceived` are a part of. */
    readonly answerBytes = 0,
  ) {
    super(message);
    this.name = 'DataPlaneTransferError';
  }
}

/**
 * getArray's `into` holds fewer bytes than the answer's body (`answerBytes`); thrown before the body
 * is read. A caller's mistake when it asked for a length; for a read to the end, an answer longer than
 * the array the caller knows of.
 */
export class DestinationTooSmallError extends RangeError {
  constructor(
    message: string,
    readonly answerBytes: number,
  ) {
    super(message);
    this.name = 'DestinationTooSmallError';
  }
}

/** The transfer's deadline passed before it finished; the connection was destroyed. */
export class DataPlaneDeadlineError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DataPlaneDeadlineError';
  }
}

/** Options of one transfer. */
export interface TransferOptions {
  /** Absolute deadline (ms since the epoch, like Date.now()): past it the connection is destroyed and the transfer rejects with DataPlaneDeadlineError. */
  deadline?: number;
  /**
   * Give up connecting after this many ms (DataPlaneConnectionError, so the caller may use another way):
   * a data port that drops SYNs (a firewall, a port the network does not route) would otherwise hold the
   * transfer for the kernel's connect timeout (about 2 minutes), or until `deadline`. Default: none.
   */
  connectTimeoutMs?: number;
  /**
   * Give up once the connection has moved no byte either way for this many ms: a daemon whose host lost
   * power or whose network path went away sends no FIN or RST, so without it a transfer with no
   * `deadline` waits for good (a GET waiting for bytes) or for the kernel's retransmission timeout
   * (about 15 minutes, a PUT sending). Before the answer's head that is a DataPlaneConnectionError (the
   * request is safe to send another way), after it a DataPlaneTransferError. Default: none.
   */
  stallTimeoutMs?: number;
  /**
   * Idle connections to reuse, and where this transfer's connection goes after a clean keep-alive
   * answer. Without, the transfer opens a connection of its own and closes it (`Connection: close`).
   */
  connections?: DataPlaneConnections;
}

/** Where a data plane listens: TCP host and port, or a unix socket path. */
export type DataPlaneEndpoint = { host: string; port: number } | { path: string };

/**
 * Parses OpenLease's data_address ("http://HOST:PORT" or "unix:PATH"); a wildcard host (0.0.0.0, ::)
 * becomes `fallbackHost` (the host the client reached the daemon on). Undefined for "", https:// or
 * anything else this client does not speak.
 */
export function parseDataAddress(address: string, fallbackHost = '127.0.0.1'): DataPlaneEndpoint | undefined {
  const path = unixSocketPath(address);
  if (path !== undefined) return { path };
  const hostPort = address.startsWith('http://') ? parseHostPort(address.slice('http://'.length).replace(/\/$/, '')) : undefined;
  if (!hostPort) return undefined;
  const wildcard = hostPort.host === '0.0.0.0' || hostPort.host === '::';
  return wildcard ? { host: fallbackHost, port: hostPort.port } : hostPort;
}

/**
 * Where a client that reached the daemon's gRPC at `grpcAddress` ("HOST:PORT", "dns:///HOST:PORT" or
 * "unix:PATH") finds the data plane OpenLease named (`dataAddress`); undefined when it must keep to
 * gRPC. A loopback or unix: data address names the daemon's own machine, so it is used only by a client
 * that reached gRPC there too (on loopback or a unix socket): from another host it would name the
 * client's own loopback or file system, where any local user could listen and be sent the lease token
 * (and the array's bytes, or answer a read with bytes of its own).
 */
export function dataPlaneEndpointFor(grpcAddress: string, dataAddress: string): DataPlaneEndpoint | undefined {
  // grpc-js address forms: unix:PATH, dns:[//authority/]HOST:PORT, ipv4:HOST:PORT, ipv6:[HOST]:PORT, HOST:PORT.
  const grpcHost = grpcAddress.startsWith('unix:')
    ? '127.0.0.1'
    : grpcAddress
        .replace(/^(dns:(\/\/[^/]*\/)?|ipv4:|ipv6:)/, '')
        .replace(/:\d+$/, '')
        .replace(/^\[(.*)\]$/, '$1');
  const endpoint = parseDataAddress(dataAddress, grpcHost);
  if (endpoint === undefined) return undefined;
  const onDaemonHost = 'path' in endpoint || isLoopbackHost(endpoint.host);
  return onDaemonHost && !isLoopbackHost(grpcHost) ? undefined : endpoint;
}

/** localhost, ::1 or 127.x.y.z (a bare host, IPv6 without brackets). */
function isLoopbackHost(host: string): boolean {
  return isLocalAddress(`${host.includes(':') ? `[${host}]` : host}:0`);
}

interface Response {
  status: number;
  headers: Record<string, string>;
  /** The body, for responses not read into a destination. */
  body?: Buffer;
  /** Bytes of the request's body handed to the socket before the answer ended. */
  bodyBytesSent?: number;
}

const MAX_HEAD_BYTES = 64 * 1024;
/**
 * The largest body collected in memory (an error's, a PUT's 200): the daemon's JSON answers are a few
 * hundred bytes, so a larger one is another server's, and is not read (a Content-Length of 64 GiB
 * would have been collected to the end).
 */
const MAX_COLLECTED_BODY_BYTES = 1024 * 1024;
/**
 * A PUT body goes to the socket in pieces of this size, each written when the one before it has been
 * taken by the kernel: the pieces' completions are what tells a body that moves from one that stalled.
 */
const BODY_PIECE_BYTES = 4 * 1024 * 1024;

/**
 * The connection was lost (reset, closed) before a byte of the answer came, on a connection an earlier
 * transfer had used: the server may have closed it as it sat idle just as this request went out (its
 * idle timeout, a restart), so the request is sent once more on a new connection. A GET, and a PUT of
 * the same bytes to the same range, may be repeated.
 */
class LostBeforeAnswer extends DataPlaneConnectionError {}

type DestinationFor = (status: number, headers: Record<string, string>, length: number) => Buffer | undefined;

/**
 * One request/response exchange. `destinationFor(status, headers, length)` may return a Buffer of
 * `length` bytes to receive a successful body into; otherwise the body is collected (small: errors).
 * When it throws, the exchange ends at once (the connection is closed, the body is not read) with that
 * error. With `transfer.connections` an idle connection to the endpoint is reused when there is one
 * (sent again once on a new connection when it turns out closed before any byte of the answer), and
 * the connection is given back after a clean keep-alive answer; without, the request says
 * `Connection: close` and its connection is closed after it.
 */
async function exchange(endpoint: DataPlaneEndpoint, head: (keepAlive: boolean) => string, body: Uint8Array | undefined, destinationFor?: DestinationFor, transfer: TransferOptions = {}): Promise<Response> {
  const pool = transfer.connections;
  if (!pool) return attempt(new DataPlaneConnection(endpoint), undefined, head(false), body, destinationFor, transfer);
  const idle = pool.take(endpoint);
  if (idle) {
    try {
      return await attempt(idle, pool, head(true), body, destinationFor, transfer);
    } catch (error) {
      if (!(error instanceof LostBeforeAnswer)) throw error;
    }
  }
  return attempt(pool.open(endpoint), pool, head(true), body, destinationFor, transfer);
}

/** The exchange on `connection` (given back to `pool` after a clean keep-alive answer, else closed). */
function attempt(connection: DataPlaneConnection, pool: DataPlaneConnections | undefined, head: string, body: Uint8Array | undefined, destinationFor: DestinationFor | undefined, transfer: TransferOptions): Promise<Response> {
  return new Promise<Response>((resolve, reject) => {
    const { socket, endpoint } = connection;
    const reused = connection.used;
    let pendingHead = Buffer.alloc(0);
    let response: Response | undefined;
    let destination: Buffer | undefined;
    let collected: Buffer[] = [];
    let bodyLength = 0;
    let received = 0;
    /** Whether any byte of the answer (a 100 Continue included) has come. */
    let answered = false;
    /** Bytes past the answer's end came with it: the connection is out of step. */
    let overrun = false;
    let bodySent = body === undefined;
    /** Bytes of the body handed to the socket so far. */
    let bodyBytesOut = 0;
    /** Every piece of the body has been taken by the kernel (or there is none). */
    let bodyWritten = body === undefined;
    let settled = false;
    /** The answer leaves the connection unfit for another request (Connection: close, HTTP/1.0, a refusal before the body). */
    let closes = false;
    /** Settled with a clean keep-alive answer: given back once the body's last piece is taken. */
    let keep = false;
    let idleMs = 0;
    let deadlineTimer: NodeJS.Timeout | undefined;
    let connectTimer: NodeJS.Timeout | undefined;
    let stallTimer: NodeJS.Timeout | undefined;
    let continueTimer: NodeJS.Timeout | undefined;
    /** When a byte last moved either way (read, or a body piece taken by the kernel). */
    let lastMoved = Date.now();

    const release = () => {
      if (keep && bodyWritten) {
        keep = false;
        pool!.giveBack(connection, idleMs);
      }
    };
    const finish = (error?: Error) => {
      if (settled) return;
      settled = true;
      if (deadlineTimer) clearTimeout(deadlineTimer);
      if (connectTimer) clearTimeout(connectTimer);
      if (stallTimer) clearTimeout(stallTimer);
      if (continueTimer) clearTimeout(continueTimer);
      connection.hold(undefined);
      if (error === undefined && pool !== undefined && !closes && received === bodyLength && !overrun && pendingHead.byteLength === 0) {
        // Given back now, or (a PUT answered before the kernel took its last piece) once it is; an
        // error meanwhile closes the socket, which the pool then refuses.
        keep = true;
        idleMs = keepAliveSeconds(response!.headers) * 1000 - KEEP_ALIVE_MARGIN_MS;
        release();
      } else socket.destroy();
      if (error) reject(error);
      else resolve({ ...response!, body: destination ? undefined : Buffer.concat(collected), bodyBytesSent: bodyBytesOut });
    };
    const sendBody = () => {
      if (bodySent) return;
      bodySent = true;
      const data = body!;
      let position = 0;
      // Views of the caller's bytes, no copy; a write error ends the exchange through 'error'.
      const next = (error?: Error | null) => {
        lastMoved = Date.now();
        if (error) return;
        if (position >= data.byteLength) {
          bodyWritten = true;
          release();
          return;
        }
        if (settled) return;
        const piece = data.subarray(position, Math.min(position + BODY_PIECE_BYTES, data.byteLength));
        position += piece.byteLength;
        bodyBytesOut = position;
        socket.write(piece, next);
      };
      next();
    };
    /** Bytes of the body (possibly the tail of the read that held the head). */
    const takeBody = (bytes: Buffer) => {
      const wanted = bytes.subarray(0, bodyLength - received);
      if (wanted.byteLength < bytes.byteLength) overrun = true;
      if (destination) wanted.copy(destination, received);
      else collected.push(Buffer.from(wanted));
      received += wanted.byteLength;
      if (received >= bodyLength) finish();
    };
    const onHead = (text: string): boolean => {
      const lines = text.split('\r\n');
      const status = /^HTTP\/1\.([01]) (\d{3})(?: |$)/.exec(lines[0]);
      if (!status) {
        finish(new DataPlaneConnectionError(`data plane ${describe(endpoint)}: not an HTTP/1.x response: ${JSON.stringify(lines[0].slice(0, 80))}`, undefined, bodyBytesOut));
        return false;
      }
      const headers = headersOf(lines.slice(1));
      const code = Number(status[2]);
      // Interim answers come before the final one, as many as the server sends (RFC 9110 §15.2: a client
      // MUST parse them even when it did not expect them): 100 lets a PUT's body go, others (103 Early
      // Hints from a proxy or CDN, 102) say nothing to this client. 101 switches protocols, asked for
      // by no request here.
      if (code === 101) {
        finish(new DataPlaneConnectionError(`data plane ${describe(endpoint)}: HTTP 101 Switching Protocols to a request that asked for no upgrade (another server's answer)`, undefined, bodyBytesOut));
        return false;
      }
      if (code < 200) {
        if (code === 100) sendBody();
        return true;
      }
      // A final answer before the body went out (a refusal): the body is never sent, and the
      // connection is not reused (the server waits for a body it will not get). An HTTP/1.0 answer
      // is taken as closing too.
      closes = !bodySent || status[1] === '0' || /(^|,)\s*close\s*(,|$)/i.test(headers.connection ?? '');
      bodySent = true;
      // A server may time out a kept-alive connection just as a request goes out on it with a 408
      // (RFC 9110 §15.5.9) rather than a bare close: sent once more on a new connection, as for a
      // close, as long as no byte of a PUT's body has gone (it waits for 100 Continue, or
      // EXPECT_CONTINUE_WAIT_MS without one).
      if (code === 408 && reused && bodyBytesOut === 0) {
        finish(new LostBeforeAnswer(`data plane ${describe(endpoint)}: HTTP 408 on a kept-alive connection before the request was read`));
        return false;
      }
      response = { status: code, headers };
      const length = bodyLengthOf(code, headers);
      if (typeof length === 'string') {
        // The daemon frames every answer with one Content-Length: this is another server's answer, and
        // where its body ends is unknown (the connection is closed unread).
        finish(new DataPlaneConnectionError(`data plane ${describe(endpoint)}: ${length} (another server's answer, such as a proxy's)`, undefined, bodyBytesOut));
        return false;
      }
      bodyLength = length;
      // An error without Content-Length (read as no body) has one that runs until the server closes the
      // connection (RFC 9112 §6.3): the connection cannot carry another request.
      if (headers['content-length'] === undefined && code !== 204 && code !== 304) closes = true;
      try {
        destination = destinationFor?.(code, headers, bodyLength);
      } catch (error) {
        finish(error as Error);
        return false;
      }
      if (!destination && bodyLength > MAX_COLLECTED_BODY_BYTES) {
        finish(new DataPlaneConnectionError(`data plane ${describe(endpoint)}: HTTP ${code} with a body of ${bodyLength} bytes, where the daemon's JSON answers hold under ${MAX_COLLECTED_BODY_BYTES} (another server's answer)`, undefined, bodyBytesOut));
        return false;
      }
      if (bodyLength === 0) finish();
      return true;
    };
    const onRead = (bytes: number, buffer: Uint8Array): boolean => {
      if (settled) return false;
      answered = true;
      lastMoved = Date.now();
      if (response) {
        if (destination && buffer.buffer === destination.buffer) {
          // The read landed in destination.subarray(received) (nextBuffer), which holds no more than the body's rest.
          received += bytes;
          if (received >= bodyLength) finish();
        } else takeBody(Buffer.from(buffer.buffer, buffer.byteOffset, bytes));
        return true;
      }
      pendingHead = Buffer.concat([pendingHead, Buffer.from(buffer.buffer, buffer.byteOffset, bytes)]);
      for (;;) {
        const end = pendingHead.indexOf('\r\n\r\n');
        if (end < 0) {
          if (pendingHead.byteLength > MAX_HEAD_BYTES) finish(new DataPlaneConnectionError(`data plane ${describe(endpoint)}: a response head over 64 KiB (the daemon's are a few hundred bytes: another server's answer)`, undefined, bodyBytesOut));
          return true;
        }
        const text = pendingHead.subarray(0, end).toString('latin1');
        // What follows the head stays pending while onHead runs: an answer that ends with its head
        // (no body) and has bytes after it is not kept for another request (finish checks).
        pendingHead = pendingHead.subarray(end + 4);
        if (!onHead(text)) return false;
        if (response) {
          const rest = pendingHead;
          pendingHead = Buffer.alloc(0);
          if (rest.byteLength > 0) {
            if (settled) overrun = true;
            else takeBody(rest);
          }
          return true;
        }
      }
    };

    /** Bytes of the body in `destination`: none of an error answer's body (collected apart) is there. */
    const held = () => (destination ? received : 0);
    /** The body's length of an answer read into `destination` (0: none). */
    const answerBytes = () => (destination ? bodyLength : 0);
    /** The connection failed before the answer: on a reused connection with no byte of it yet, LostBeforeAnswer (sent again). */
    const failedBeforeAnswer = (message: string, cause?: Error) => finish(new (reused && !answered ? LostBeforeAnswer : DataPlaneConnectionError)(`data plane ${describe(endpoint)}: ${message}`, cause, bodyBytesOut));
    connection.hold({
      nextBuffer: (scratch) => (response && destination && received < bodyLength ? destination.subarray(received) : scratch),
      onRead,
      onError: (error) => {
        if (!response) failedBeforeAnswer(error.message, error);
        else finish(new DataPlaneTransferError(`data plane ${describe(endpoint)}: the connection failed mid-answer: ${error.message}`, error, true, held(), false, answerBytes()));
      },
      onClose: () => {
        if (!response) failedBeforeAnswer('connection closed before an answer');
        else if (received < bodyLength) finish(new DataPlaneTransferError(`data plane ${describe(endpoint)}: the answer ended after ${received} of ${bodyLength} bytes`, undefined, true, held(), false, answerBytes()));
      },
    });
    if (transfer.deadline !== undefined) {
      const deadline = transfer.deadline;
      const arm = () => {
        const left = deadline - Date.now();
        if (left <= 0) finish(new DataPlaneDeadlineError(`data plane ${describe(endpoint)}: deadline exceeded${response ? ` after ${received} of ${bodyLength} bytes of the answer` : ' before an answer'}`));
        // A delay past MAX_TIMER_MS (or Infinity) would make setTimeout fire at once, warning each time.
        else deadlineTimer = setTimeout(arm, Math.min(left, MAX_TIMER_MS));
      };
      arm();
    }
    if (transfer.connectTimeoutMs !== undefined && connection.connecting && !settled) {
      const connectTimeoutMs = transfer.connectTimeoutMs;
      // The check waits for setImmediate: a connection made while the event loop was busy is read in
      // the poll phase, which runs after the timers but before it.
      const giveUp = () => setImmediate(() => connection.connecting && finish(new DataPlaneConnectionError(`data plane ${describe(endpoint)}: not connected after ${connectTimeoutMs} ms`)));
      connectTimer = setTimeout(giveUp, Math.min(Math.max(connectTimeoutMs, 0), MAX_TIMER_MS));
    }
    const watchStalls = (stallTimeoutMs: number) => {
      // As the connect timeout, the check waits for setImmediate: bytes that came while the event loop
      // was blocked are read in the poll phase, after the timers but before it.
      const check = () =>
        setImmediate(() => {
          if (settled) return;
          const still = Date.now() - lastMoved;
          if (still < stallTimeoutMs) {
            stallTimer = setTimeout(check, stallTimeoutMs - still);
            return;
          }
          const message = `data plane ${describe(endpoint)}: no byte moved either way for ${still} ms`;
          if (!response) finish(new DataPlaneConnectionError(`${message}, before an answer`, undefined, bodyBytesOut));
          else finish(new DataPlaneTransferError(`${message}, after ${received} of ${bodyLength} bytes of the answer`, undefined, false, held(), true, answerBytes()));
        });
      stallTimer = setTimeout(check, stallTimeoutMs);
    };
    const start = () => {
      if (settled) return;
      if (connectTimer) clearTimeout(connectTimer);
      lastMoved = Date.now();
      if (transfer.stallTimeoutMs !== undefined) watchStalls(Math.min(Math.max(transfer.stallTimeoutMs, 1), MAX_TIMER_MS));
      socket.write(head);
      if (body === undefined) return;
      if (!/\r\nexpect: 100-continue\r\n/i.test(head)) sendBody();
      // A server that ignores the expectation (another server's, a proxy's) never sends 100: the body
      // goes after EXPECT_CONTINUE_WAIT_MS without it (RFC 9110 §10.1.1: the client need not wait longer;
      // curl waits 1 s), not at the stall timeout. A final answer before then means the body never goes.
      else continueTimer = setTimeout(() => !settled && !response && sendBody(), EXPECT_CONTINUE_WAIT_MS);
    };
    if (connection.connecting) socket.once('connect', start);
    else start();
  });
}

/**
 * An answer's header lines as lower-case names and values: a name sent more than once has its values
 * joined with ", " (RFC 9110 §5.3), and a line that begins with a space or tab continues the one
 * before it (obs-fold, which a client replaces with a space, RFC 9112 §5.2). No prototype: a header
 * named "constructor" is a header.
 */
function headersOf(lines: string[]): Record<string, string> {
  const headers = Object.create(null) as Record<string, string>;
  let last: string | undefined;
  for (const line of lines) {
    if (last !== undefined && /^[ \t]/.test(line)) {
      headers[last] = `${headers[last]} ${line.trim()}`.trim();
      continue;
    }
    const colon = line.indexOf(':');
    last = colon > 0 ? line.slice(0, colon).trim().toLowerCase() : undefined;
    if (last === undefined) continue;
    const value = line.slice(colon + 1).trim();
    headers[last] = last in headers ? `${headers[last]}, ${value}` : value;
  }
  return headers;
}

/**
 * The length of an answer's body (RFC 9112 §6.3), or why this client cannot tell it: none for a 204 or
 * 304, whatever they say; else one Content-Length, a decimal number (sent twice with the same value is
 * that value, RFC 9110 §8.6). A Transfer-Encoding (chunked), or a success without Content-Length (a
 * body until the connection closes), is framing the daemon never sends; an error without one has no
 * body worth reading (it is not the daemon's JSON error either way).
 */
function bodyLengthOf(status: number, headers: Record<string, string>): number | string {
  if (status === 204 || status === 304) return 0;
  const codings = headers['transfer-encoding'];
  if (codings !== undefined) return `Transfer-Encoding ${JSON.stringify(codings.slice(0, 100))}: a body framed otherwise than by Content-Length, which this client does not read`;
  const value = headers['content-length'];
  if (value === undefined) return status < 300 ? `HTTP ${status} without a Content-Length (a body until the connection closes)` : 0;
  const values = new Set(value.split(',').map((element) => element.trim()));
  const [only] = values;
  // Past 15 digits a Number rounds, and no array is that large (as the daemon's own parser says).
  if (values.size !== 1 || !/^\d{1,15}$/.test(only)) return `Content-Length ${JSON.stringify(value.slice(0, 100))} is not one decimal number`;
  return Number(only);
}

/**
 * Whether a 200 or 206 answer of `bodyLength` bytes to a GET of `length` bytes at `offset` (0: to the
 * end) holds the bytes asked for: `{ asked: true }`; `{ pastEnd: SIZE }` when it is the daemon's clip
 * of a range that passes the end (206 from `offset` to the array's last byte, shorter than asked); else
 * why it is not (another server's answer: a proxy's, or one that ignored or misread the Range). A 200
 * holds the whole array, from byte 0; a 206 its `Content-Range: bytes FIRST-LAST/SIZE` (or `/*`), which
 * must start at `offset` and be the body's length (a proxy answering bytes 0-99 to bytes=100-199 sends
 * the asked length of other bytes).
 */
function answeredRange(status: number, contentRange: string | undefined, bodyLength: number, offset: number, length: number): { asked: true } | { pastEnd: string } | { wrong: string } {
  if (status === 200) {
    if (offset !== 0) return { wrong: 'a 200 holds the whole array, from byte 0' };
    return length === 0 || bodyLength === length ? { asked: true } : { wrong: `a 200 of ${bodyLength} bytes, not ${length}` };
  }
  const range = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(contentRange ?? '');
  if (!range) return { wrong: contentRange === undefined ? 'a 206 without a Content-Range (one range of bytes; a multipart body is not one)' : 'a 206 whose Content-Range is not "bytes FIRST-LAST/SIZE"' };
  const [first, last] = [BigInt(range[1]), BigInt(range[2])];
  const size = range[3] === '*' ? undefined : BigInt(range[3]);
  if (first !== BigInt(offset)) return { wrong: `its bytes start at ${range[1]}, not at ${offset}` };
  if (last - first + 1n !== BigInt(bodyLength)) return { wrong: `its Content-Range is not the body's ${bodyLength} bytes` };
  if (size !== undefined && last >= size) return { wrong: `its last byte ${range[2]} is past the size ${range[3]} it names` };
  const toEnd = size !== undefined && last + 1n === size;
  if (length === 0) return toEnd ? { asked: true } : { wrong: `a read to the end got bytes up to ${range[2]} of ${range[3]}` };
  if (bodyLength === length) return { asked: true };
  return bodyLength < length && toEnd ? { pastEnd: range[3] } : { wrong: `${bodyLength} bytes where ${length} were asked` };
}

/** The idle timeout an answer announces (`Keep-Alive: timeout=N`), in seconds; DEFAULT_SERVER_KEEP_ALIVE_SECONDS when it says none. */
function keepAliveSeconds(headers: Record<string, string>): number {
  const timeout = /(?:^|,)\s*timeout\s*=\s*(\d+)/i.exec(headers['keep-alive'] ?? '')?.[1];
  return timeout === undefined ? DEFAULT_SERVER_KEEP_ALIVE_SECONDS : Number(timeout);
}

/** "HOST:PORT" or "unix:PATH", as errors name the data plane. */
export function describe(endpoint: DataPlaneEndpoint): string {
  return 'path' in endpoint ? `unix:${endpoint.path}` : `${endpoint.host}:${endpoint.port}`;
}

/**
 * The error of an answer other than 200/206: the daemon's JSON error as a DataPlaneHttpError. Every
 * error the daemon answers has that body, so one without it is another server's (a proxy in front of
 * the data plane: nginx's HTML 502 or 503 while the daemon's data listener restarts, its 413 for a
 * body past client_max_body_size): a DataPlaneConnectionError, like a connection that failed, so that
 * the transfer is sent over gRPC instead; a PUT's body may have reached the daemon in part meanwhile
 * (`bodyBytesSent`), which the gRPC write of the same bytes rewrites.
 */
function errorOf(endpoint: DataPlaneEndpoint, response: Response): DataPlaneHttpError | DataPlaneConnectionError {
  const text = response.body?.toString('utf8') ?? '';
  try {
    const parsed = JSON.parse(text) as HttpErrorBody;
    if (typeof parsed.code === 'number' && typeof parsed.status === 'string') return new DataPlaneHttpError({ ...parsed, metadata: parsed.metadata ?? {} });
  } catch {
    // not the daemon's JSON error
  }
  const message = `data plane ${describe(endpoint)}: HTTP ${response.status} without the daemon's JSON error (another server's answer, such as a proxy's): ${JSON.stringify(text.slice(0, 200))}`;
  return new DataPlaneConnectionError(message, undefined, response.bodyBytesSent ?? 0);
}

/** The request's head; without `keepAlive` it says `Connection: close` (HTTP/1.1 keeps the connection otherwise). */
function requestHead(method: string, endpoint: DataPlaneEndpoint, arrayId: string, token: string, extra: Record<string, string>, keepAlive: boolean): string {
  const host = 'path' in endpoint ? 'localhost' : endpoint.host.includes(':') ? `[${endpoint.host}]:${endpoint.port}` : `${endpoint.host}:${endpoint.port}`;
  const lines = [`${method} /v1/arrays/${encodeURIComponent(arrayId)} HTTP/1.1`, `Host: ${host}`, `Authorization: Bearer ${token}`];
  if (!keepAlive) lines.push('Connection: close');
  for (const [name, value] of Object.entries(extra)) lines.push(`${name}: ${value}`);
  return `${lines.join('\r\n')}\r\n\r\n`;
}

/**
 * The last byte position of `length` bytes at `offset`, exactly: past 2^53 a Number sum would round
 * to a neighbouring position, and the header would name bytes the caller never asked for.
 */
function lastPosition(offset: number, length: number): string {
  return String(BigInt(offset) + BigInt(length) - 1n);
}

/**
 * PUT `data` at `offset` of the array; resolves to the bytes written. With `checksum`, the CRC-32C of
 * `data` goes in X-Tensormem-Crc32c and the daemon refuses the write (CHECKSUM_MISMATCH) when the bytes
 * it received differ.
 */
export async function putArray(endpoint: DataPlaneEndpoint, token: string, arrayId: string, data: Uint8Array, offset = 0, options: { checksum?: boolean } & TransferOptions = {}): Promise<number> {
  const headers: Record<string, string> = { 'Content-Type': 'application/octet-stream', 'Content-Length': String(data.byteLength) };
  if (data.byteLength > 0) {
    headers.Expect = '100-continue';
    headers['Content-Range'] = `bytes ${offset}-${lastPosition(offset, data.byteLength)}/*`;
  } else if (offset !== 0) {
    throw new RangeError('an empty write is only possible at offset 0 on the data plane');
  }
  if (options.checksum) headers['X-Tensormem-Crc32c'] = crc32cHex(crc32c(data));
  const response = await exchange(endpoint, (keepAlive) => requestHead('PUT', endpoint, arrayId, token, headers, keepAlive), data.byteLength > 0 ? data : undefined, undefined, options);
  if (response.status !== 200) throw errorOf(endpoint, response);
  let written: unknown;
  try {
    written = (JSON.parse(response.body!.toString('utf8')) as { bytes_written?: unknown }).bytes_written;
  } catch {
    // checked below
  }
  // The daemon answers every write it took with its JSON bytes_written: this 200 is another server's
  // (a proxy's), as an error without the daemon's JSON is, and the write is sent another way. The
  // body went out (`bodyBytesSent`), so part or all of it may have reached the daemon; writing the
  // same bytes to the same range again leaves the range as one write would.
  if (typeof written !== 'number') {
    const message = `data plane ${describe(endpoint)}: a PUT answered 200 without the daemon's bytes_written (another server's answer, such as a proxy's): ${JSON.stringify(response.body!.toString('utf8').slice(0, 200))}`;
    throw new DataPlaneConnectionError(message, undefined, response.bodyBytesSent ?? 0);
  }
  return written;
}

/**
 * GET [offset, offset + length) of the array (length 0: to the end) read straight into `into` when
 * given (it must hold the bytes; the result is a view of it), else into a new Buffer. With length > 0
 * exactly `length` bytes come back: a range that passes the end of the array (which the daemon clips)
 * rejects with DataPlaneHttpError OUT_OF_RANGE, as ReadArray does, before the body is read; an answer
 * that does not hold the bytes asked for (answeredRange: another length that is not that clip, a 206
 * whose Content-Range starts elsewhere or is missing, a 200 to a range from a later offset) is another
 * server's, a DataPlaneConnectionError, also before the body is read. An `into`
 * too small for the answer rejects with a DestinationTooSmallError (a RangeError) before the body is read.
 */
export async function getArray(endpoint: DataPlaneEndpoint, token: string, arrayId: string, offset = 0, length = 0, into?: Buffer, options: TransferOptions = {}): Promise<Buffer> {
  const headers: Record<string, string> = {};
  if (offset !== 0 || length !== 0) headers.Range = length === 0 ? `bytes=${offset}-` : `bytes=${offset}-${lastPosition(offset, length)}`;
  let result: Buffer | undefined;
  const response = await exchange(
    endpoint,
    (keepAlive) => requestHead('GET', endpoint, arrayId, token, headers, keepAlive),
    undefined,
    (status, answerHeaders, bodyLength) => {
      if (status !== 200 && status !== 206) return undefined;
      const contentRange = answerHeaders['content-range'];
      const answered = answeredRange(status, contentRange, bodyLength, offset, length);
      if ('wrong' in answered) {
        const named = contentRange === undefined ? '' : ` (Content-Range ${JSON.stringify(contentRange.slice(0, 100))})`;
        const asked = length === 0 ? 'the rest' : `${length} bytes`;
        throw new DataPlaneConnectionError(`data plane ${describe(endpoint)}: a read of ${asked} at offset ${offset} of array ${arrayId} was answered HTTP ${status} with ${bodyLength} bytes${named}: ${answered.wrong}, so not the daemon's answer (another server's, such as a proxy's)`);
      }
      if ('pastEnd' in answered) {
        // The daemon clips a Range that passes the end; say what ReadArray says instead.
        throw new DataPlaneHttpError({
          code: 416,
          status: 'OUT_OF_RANGE',
          reason: 'OUT_OF_RANGE',
          message: `length: ${length} bytes at offset ${offset} pass the end of array ${arrayId} (${answered.pastEnd} bytes)`,
          metadata: { field: 'length' },
        });
      }
      if (into && into.byteLength < bodyLength) throw new DestinationTooSmallError(`getArray: the destination holds ${into.byteLength} bytes; the answer for array ${arrayId} has ${bodyLength}`, bodyLength);
      result = into ? into.subarray(0, bodyLength) : Buffer.allocUnsafe(bodyLength);
      return result;
    },
    options,
  );
  if (response.status !== 200 && response.status !== 206) throw errorOf(endpoint, response);
  return result ?? Buffer.alloc(0);
}
