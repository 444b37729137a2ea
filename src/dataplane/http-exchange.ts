/** One request and its answer on the data plane's HTTP/1.1 server (http1-server.ts), and what reading its body can fail with. */
import { STATUS_CODES } from 'node:http';
import type { RequestHead } from './http1-head';
import type { Http1Connection } from './http1-connection';

let dateSecond = -1;
let dateText = '';

/**
 * Now as an HTTP-date (IMF-fixdate, RFC 9110 §5.6.7), made at most once a second: an origin server with
 * a clock MUST send Date in every 2xx, 3xx and 4xx answer (RFC 9110 §6.6.1).
 */
export function httpDate(): string {
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

/** The code of readBody's rejection when the client ended its side of the connection (a FIN) before the whole body: it can still be answered. */
export const BODY_CUT_SHORT = 'ERR_BODY_CUT_SHORT';

/** `expected`: the body's length, undefined for a chunked body (cut before its last chunk). */
export function bodyCutShort(expected: number | undefined, received: number): Error & { code: string; bytesReceived: number } {
  const of = expected === undefined ? `${received} bytes of the chunked body, before its last chunk` : `${received} of the body's ${expected} bytes`;
  return Object.assign(new Error(`the client ended its side of the connection after ${of}`), { code: BODY_CUT_SHORT, bytesReceived: received });
}

export function prematureClose(): Error {
  return Object.assign(new Error('the connection closed before the whole request body arrived'), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
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
   * Reads the request body (Content-Length bytes, or a chunked body's data through its last chunk and
   * trailers), handing `reader` each piece as it arrives; resolves to the bytes read. Rejects with
   * INVALID_ARGUMENT (reason MALFORMED_REQUEST) for malformed chunked framing. Rejects with code BODY_CUT_SHORT (and bytesReceived) when the client's input
   * ends first (its FIN: a half-close, after which the answer still reaches it, or a close), with code
   * ERR_STREAM_PREMATURE_CLOSE when the connection is gone first (reset, cut, or answered early), or
   * with what the reader threw.
   */
  readBody(reader: BodyReader): Promise<number> {
    return this.connection.readBody(reader);
  }

  /**
   * The trailer fields of a chunked body that the server keeps (Http1ServerOptions.keptTrailers), by
   * lowercase name, once readBody has resolved; empty before, and for a Content-Length body.
   */
  get trailers(): Readonly<Record<string, string>> {
    return this.connection.trailers;
  }

  /** Makes readBody reject with `error` now, if it is still reading; what arrives after is dropped with the connection. */
  abortBody(error: Error): void {
    this.connection.abortBody(error);
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
    // The answer is complete once the socket has taken it; then the connection moves on. A write that
    // fails (the socket destroyed, a reset, with the answer still queued) means the connection went
    // away before the answer was complete: destroyed says so to the close listeners.
    socket.write('', (error) => {
      if (error) this.gone = true;
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
