/** One client connection of the data plane's HTTP/1.1 server (http1-server.ts): heads parsed, bodies framed, one exchange at a time. */
import { STATUS_CODES } from 'node:http';
import { Socket } from 'node:net';
import type { ErrorReason } from '../errors';
import { ChunkedBodyDecoder } from './chunked-body';
import { HEAD_END, MAX_HEAD_BYTES, parseHead, strayLineBreak, type RequestHead } from './http1-head';
import { BodyReader, bodyCutShort, httpDate, HttpExchange, HttpHandler, prematureClose } from './http-exchange';

/** What a connection needs of its server: the handler and how a stalled request is cut. */
export interface ConnectionSettings {
  handler: HttpHandler;
  stallTimeoutMs: number;
  bodyReadBytes: number;
  keepAliveTimeoutMs: number;
  headTimeoutMs: number;
  drainTimeoutMs: number;
  onStall?: (exchange: HttpExchange) => void;
  /** Lowercase names of the chunked trailer fields kept for the handler (HttpExchange.trailers); the others are dropped. */
  keptTrailers?: ReadonlySet<string>;
}

/**
 * The accepted socket's handle re-wrapped in a `net.Socket` with `onread`, so that reads land in the
 * connection's own buffers instead of a new Buffer each. `onread` is public API, but `net.Server` has
 * no option to give it to accepted sockets, so this passes the handle to the Socket constructor as
 * node's own net.Server does (the `handle` option). Undefined where the handle cannot take a user
 * buffer (the caller then reads through 'data' events).
 */
export function connectionWithOwnReadBuffers(raw: Socket, settings: ConnectionSettings): Http1Connection | undefined {
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

const NO_TRAILERS: Readonly<Record<string, string>> = Object.freeze(Object.create(null) as Record<string, string>);

/** head: reading a request head; request: one exchange in hand; draining: answered early, reading and dropping what the client still sends before closing. */
type ConnectionState = 'head' | 'request' | 'draining' | 'closed';

/** One client connection: heads parsed, bodies framed, one exchange at a time. */
export class Http1Connection {
  private state: ConnectionState = 'head';
  /** Bytes received and not yet consumed (part of a head, a body that arrived early, the next request). */
  private pending?: Buffer;
  private exchange?: HttpExchange;
  /** Bytes of a Content-Length body not yet read. */
  private bodyRemaining = 0;
  /** A chunked body's framing, from its head until the connection's next request (done once its last chunk and trailers are read). */
  private chunked?: ChunkedBodyDecoder;
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

  /** Part of the request's body (or its chunked framing) is still to be read. */
  private get bodyUnread(): boolean {
    return this.bodyRemaining > 0 || (this.chunked !== undefined && !this.chunked.done);
  }

  /** The buffer the next read lands in (onread mode). */
  readBuffer(): Buffer {
    if (this.state === 'request' && this.bodyUnread) return (this.bodyBuffer ??= Buffer.allocUnsafeSlow(this.settings.bodyReadBytes));
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
      } else if (this.bodyUnread && this.reader && !this.readerBusy) {
        offset = this.chunked ? this.consumeChunked(chunk, offset) : this.consumeLength(chunk, offset);
      } else {
        break;
      }
    }
    if (offset < chunk.byteLength && this.serving) this.stash(chunk.subarray(offset), reused);
  }

  /** Hands the reader the next piece of a Content-Length body from `chunk` at `offset`; returns the offset after it. */
  private consumeLength(chunk: Buffer, offset: number): number {
    const piece = chunk.subarray(offset, offset + Math.min(this.bodyRemaining, chunk.byteLength - offset));
    this.bodyRemaining -= piece.byteLength;
    this.deliver(piece);
    return offset + piece.byteLength;
  }

  /**
   * Decodes a chunked body's framing from `chunk` at `offset` up to its next data bytes, which go to
   * the reader as a view of `chunk`; returns the offset after what it used. Malformed framing fails the
   * read with the decoder's error (the handler answers it; the connection closes after, its framing
   * lost), and the rest of `chunk` is dropped.
   */
  private consumeChunked(chunk: Buffer, offset: number): number {
    let step;
    try {
      step = this.chunked!.decode(chunk, offset);
    } catch (error) {
      this.readFailed(error as Error);
      return chunk.byteLength;
    }
    if (step.data) this.deliver(step.data);
    else this.afterPiece();
    return step.end;
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
        this.refuseTooLarge(head, start);
        return chunk.byteLength;
      }
      // A head whose lines end in bare LFs (\`printf 'GET / HTTP/1.1\nHost: x\n\n' | nc\`) never has a
      // CRLF CRLF: without this it was cut at the head deadline with no answer. It is malformed from
      // its first stray line break, so refused then, naming the line as a whole head's refusal would.
      // What was pending is not looked at again (a head trickling in a byte at a time), save its last
      // byte: a CR there is stray or not by the byte after it.
      const stray = strayLineBreak(head, start, before - 1);
      if (stray >= 0) {
        const parsed = parseHead(head.toString('latin1', start, stray + 1));
        const malformed = 'malformed' in parsed ? parsed : { malformed: 'a CR or LF is allowed only in the CRLF that ends a line', field: 'header line' };
        this.refuse(400, malformed.malformed, malformed.field === undefined ? {} : { field: malformed.field }, isHeadRequest(head, start));
        return chunk.byteLength;
      }
      if (start < head.byteLength) this.pending = Buffer.from(head.subarray(start));
      // The deadline runs from the first byte, bare line breaks included: a peer sending only those
      // would otherwise hold the connection forever (each byte restarts the idle timer).
      this.headTimer ??= setTimeout(() => this.socket.destroy(), this.settings.headTimeoutMs);
      return chunk.byteLength;
    }
    if (end - start > MAX_HEAD_BYTES) {
      this.refuseTooLarge(head, start);
      return chunk.byteLength;
    }
    const parsed = parseHead(head.toString('latin1', start, end));
    if ('malformed' in parsed) {
      const headRequest = isHeadRequest(head, start);
      if (parsed.unsupportedCoding !== undefined) this.refuse(501, parsed.malformed, { field: 'Transfer-Encoding', coding: parsed.unsupportedCoding }, headRequest);
      else this.refuse(400, parsed.malformed, parsed.field === undefined ? {} : { field: parsed.field }, headRequest);
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
    this.chunked = head.chunked ? new ChunkedBodyDecoder(this.settings.keptTrailers) : undefined;
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
    if (this.bodyUnread || !this.bodyDone) return;
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
    return this.bodyUnread && this.reader !== undefined && !this.readerBusy;
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
      if (this.bodyDone && !this.readerBusy && this.pending === undefined) this.readFailed(bodyCutShort(this.chunked ? undefined : this.bodyDone.bytes + this.bodyRemaining, this.bodyDone.bytes));
      if (this.state === 'head') this.drain();
      return;
    }
    if (this.wantsBytes()) this.socket.resume();
    else this.socket.pause();
  }

  /** HttpExchange.readBody. */
  readBody(reader: BodyReader): Promise<number> {
    if (this.bodyDone || this.state !== 'request') return Promise.reject(new Error('the request body is being read already, or the request is over'));
    if (!this.bodyUnread) return Promise.resolve(0);
    if (this.ended && !this.pending) return Promise.reject(bodyCutShort(this.chunked ? undefined : this.bodyRemaining, 0));
    return new Promise<number>((resolve, reject) => {
      this.reader = reader;
      this.bodyDone = { resolve, reject, bytes: 0 };
      this.pump();
    });
  }

  /** HttpExchange.trailers: the kept trailer fields of the request's chunked body, once it is read (none for a Content-Length body). */
  get trailers(): Readonly<Record<string, string>> {
    return this.chunked?.done ? this.chunked.trailers : NO_TRAILERS;
  }

  /** HttpExchange.abortBody: the body being read fails with `error` (a piece still with the reader finishes on its own). */
  abortBody(error: Error): void {
    if (this.bodyDone) this.readFailed(error);
  }

  /** Whether the connection must close after this exchange's answer. */
  closesAfter(exchange: HttpExchange): boolean {
    return !exchange.keepAlive || this.bodyUnread || this.ended;
  }

  /** HttpExchange.end, once the answer is written: the next request, or the end of the connection. */
  finished(exchange: HttpExchange, close: boolean): void {
    if (this.exchange !== exchange || this.state !== 'request') return;
    if (close || this.bodyUnread) {
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

  /**
   * A head that passed MAX_HEAD_BYTES (from `start` in `head`): 414 when its request line alone does
   * (RFC 9112 §3: a server MUST answer a request-target longer than it will parse 414), else 431.
   */
  private refuseTooLarge(head: Buffer, start: number): void {
    const lineEnd = head.indexOf('\r\n', start);
    const headRequest = isHeadRequest(head, start);
    if (lineEnd < 0 || lineEnd - start > MAX_HEAD_BYTES) this.refuse(414, `the request line is over ${MAX_HEAD_BYTES} bytes: its target is longer than any array path`, { field: 'request line' }, headRequest);
    else this.refuse(431, `the request head is over ${MAX_HEAD_BYTES} bytes`, {}, headRequest);
  }

  /**
   * 501: a transfer coding not implemented (UNIMPLEMENTED, as gRPC's status for 501 is). The answer to
   * a HEAD request has the headers of the JSON body and no body (RFC 9110 §9.3.2).
   */
  private refuse(code: 400 | 414 | 431 | 501, message: string, metadata: Record<string, string> = {}, headRequest = false): void {
    const [status, reason]: [string, ErrorReason] =
      code === 400 ? ['INVALID_ARGUMENT', 'MALFORMED_REQUEST'] : code === 501 ? ['UNIMPLEMENTED', 'UNSUPPORTED_TRANSFER_CODING'] : ['RESOURCE_EXHAUSTED', 'REQUEST_HEAD_TOO_LARGE'];
    const body = JSON.stringify({ code, status, reason, message, metadata });
    this.drain(`HTTP/1.1 ${code} ${STATUS_CODES[code]}\r\nDate: ${httpDate()}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${headRequest ? '' : body}`);
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

/** Whether the request whose head starts at `start` in `head` is a HEAD (its line read however malformed the rest is). */
function isHeadRequest(head: Buffer, start: number): boolean {
  return head.toString('latin1', start, start + 5) === 'HEAD ';
}
