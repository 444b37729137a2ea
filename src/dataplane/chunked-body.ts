/**
 * A request body in chunked framing (RFC 9112 §7.1), decoded as it arrives, for the data plane's
 * connection (./http1-connection.ts). The data bytes of each chunk are handed on as views of the bytes
 * read (never copied), however the reads cut the framing: a chunk-size line or a trailer line split
 * over reads is kept (it is short, and bounded) until its end arrives. Chunk extensions are read and
 * ignored; trailer fields are read and dropped, save those the decoder is told to keep (the data plane
 * keeps X-Tensormem-Crc32c, a checksum a streaming producer knows only at the end), which are in
 * `trailers` once the body is done.
 */
import { TensormemError, invalidArgument } from '../errors';
import { MAX_HEAD_BYTES, QUOTED_STRING_PATTERN, TOKEN, TOKEN_PATTERN, withoutOws } from './http1-head';

/** Longest chunk-size line, extensions and CRLF included. */
export const MAX_CHUNK_LINE_BYTES = 4096;
/** Largest trailer section (every trailer line and the blank line that ends it), as large as a head. */
export const MAX_TRAILER_BYTES = MAX_HEAD_BYTES;

const CR = 0x0d;
const LF = 0x0a;

/**
 * chunk-size, then optional extensions: `;name` or `;name=value`, the value a token or a quoted-string
 * (RFC 9112 §7.1.1). No whitespace anywhere in the line: the grammar's BWS is what llhttp, a front
 * proxy's strict parser, refuses, and a size line that one parser reads and another refuses (or reads
 * to another end, as a quoted value cut by a CRLF) draws two chunk boundaries.
 */
const SIZE_LINE = new RegExp(`^([0-9A-Fa-f]+)(?:;${TOKEN_PATTERN}(?:=(?:${TOKEN_PATTERN}|${QUOTED_STRING_PATTERN}))?)*$`);
/** Fields that frame a message, not allowed in trailers (RFC 9110 §6.5.1); llhttp refuses a Content-Length there. */
const FRAMING_FIELDS = new Set(['content-length', 'transfer-encoding']);
/** Control bytes other than HTAB: none belongs in a trailer line. */
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f]/;

/** size: a chunk-size line; data: a chunk's bytes; data-end: the CRLF after them; trailer: the trailer section; done: all read. */
type Phase = 'size' | 'data' | 'data-end' | 'trailer' | 'done';

/** One step of ChunkedBodyDecoder.decode: where it stopped in the bytes, and the data it found (a view of them). */
export interface DecodedStep {
  end: number;
  data?: Buffer;
}

/** Decodes one chunked body; each decode() call reads framing up to the next data bytes, which it returns. */
export class ChunkedBodyDecoder {
  private phase: Phase = 'size';
  /** The line being read, what arrived of it in earlier reads (latin1, without its line end). */
  private line = '';
  private chunkLeft = 0;
  /** Bytes of the CRLF after a chunk's data seen so far (0 or 1). */
  private dataEndSeen = 0;
  private trailerBytes = 0;
  /** The framing was found malformed: every later decode() throws this again. */
  private failure?: TensormemError;
  /**
   * The kept trailer fields read so far, by lowercase name, their values without OWS; a field sent on
   * several lines is its values joined by ", ", as a header's are (RFC 9110 §5.3).
   */
  readonly trailers: Record<string, string> = Object.create(null) as Record<string, string>;

  /** `keep`: the lowercase names of the trailer fields to keep in `trailers`; the others are dropped. */
  constructor(private readonly keep: ReadonlySet<string> = new Set()) {}

  /** The last chunk and the trailer section have been read: the body is complete. */
  get done(): boolean {
    return this.phase === 'done';
  }

  /**
   * Reads framing in `bytes` from `offset` until data bytes (returned, a view of `bytes`, with `end`
   * after them), the end of the body (done, `end` after its last byte) or the end of `bytes`. Throws
   * INVALID_ARGUMENT (reason MALFORMED_REQUEST) naming Transfer-Encoding (a size line, a trailer) or
   * body (the bytes after a chunk's data) and what was seen.
   */
  decode(bytes: Buffer, offset: number): DecodedStep {
    if (this.failure) throw this.failure;
    let at = offset;
    while (at < bytes.byteLength && this.phase !== 'done') {
      if (this.phase === 'data') {
        const length = Math.min(this.chunkLeft, bytes.byteLength - at);
        this.chunkLeft -= length;
        if (this.chunkLeft === 0) this.phase = 'data-end';
        return { end: at + length, data: bytes.subarray(at, at + length) };
      }
      if (this.phase === 'data-end') {
        if (bytes[at] !== (this.dataEndSeen === 0 ? CR : LF)) {
          const seen = bytes.toString('latin1', this.dataEndSeen === 0 ? at : at - 1, Math.min(bytes.byteLength, at + 8));
          throw this.fail('body', "CRLF after a chunk's data (as many data bytes as its size said)", seen);
        }
        at++;
        if (++this.dataEndSeen === 2) {
          this.dataEndSeen = 0;
          this.phase = 'size';
        }
        continue;
      }
      at = this.readLine(bytes, at);
    }
    return { end: at };
  }

  /** Reads (part of) a size or trailer line from `at`; handles it once its LF arrives. Returns where it stopped. */
  private readLine(bytes: Buffer, at: number): number {
    const limit = this.phase === 'size' ? MAX_CHUNK_LINE_BYTES : MAX_TRAILER_BYTES - this.trailerBytes;
    const lf = bytes.indexOf(LF, at);
    const end = lf < 0 ? bytes.byteLength : lf;
    // The line so far with its line end, the LF included when it has come.
    if (this.line.length + (end - at) + (lf < 0 ? 0 : 1) > limit) {
      const what = this.phase === 'size' ? `a chunk-size line (extensions included) of at most ${MAX_CHUNK_LINE_BYTES} bytes` : `a trailer section of at most ${MAX_TRAILER_BYTES} bytes`;
      throw this.fail('Transfer-Encoding', what, (this.line + bytes.toString('latin1', at, Math.min(end, at + 100))).slice(0, 100));
    }
    this.line += bytes.toString('latin1', at, end);
    if (lf < 0) return bytes.byteLength;
    const line = this.line;
    this.line = '';
    // Lines end in CRLF only: a bare LF read as a line end by one parser and not by another smuggles requests.
    if (!line.endsWith('\r')) throw this.fail('Transfer-Encoding', `a ${this.phase === 'size' ? 'chunk-size' : 'trailer'} line ending in CRLF`, `${line.slice(0, 100)}\n`);
    const content = line.slice(0, -1);
    if (this.phase === 'size') this.sizeLine(content);
    else this.trailerLine(content, line.length + 1);
    return lf + 1;
  }

  private sizeLine(line: string): void {
    const match = SIZE_LINE.exec(line);
    if (!match) throw this.fail('Transfer-Encoding', 'a chunk-size line: hex digits, then optional ;name or ;name=value extensions, no whitespace', line.slice(0, 100));
    const digits = match[1].replace(/^0+(?=.)/, '');
    const size = digits.length > 14 ? Infinity : parseInt(digits, 16);
    if (!Number.isSafeInteger(size)) throw this.fail('Transfer-Encoding', 'a chunk size of at most 2^53 - 1 bytes', match[1].slice(0, 100));
    if (size === 0) {
      this.phase = 'trailer';
      return;
    }
    this.chunkLeft = size;
    this.phase = 'data';
  }

  private trailerLine(line: string, bytes: number): void {
    this.trailerBytes += bytes;
    if (line === '') {
      this.phase = 'done';
      return;
    }
    const colon = line.indexOf(':');
    if (colon <= 0 || !TOKEN.test(line.slice(0, colon)) || CONTROL.test(line) || line.includes('\r')) {
      throw this.fail('Transfer-Encoding', 'a trailer line "Name: value" (or the blank line that ends the trailers)', line.slice(0, 100));
    }
    const name = line.slice(0, colon).toLowerCase();
    if (FRAMING_FIELDS.has(name)) throw this.fail('Transfer-Encoding', 'a trailer field other than Content-Length or Transfer-Encoding (RFC 9110 §6.5.1)', line.slice(0, 100));
    if (!this.keep.has(name)) return;
    const value = withoutOws(line.slice(colon + 1));
    this.trailers[name] = name in this.trailers ? `${this.trailers[name]}, ${value}` : value;
  }

  private fail(field: 'Transfer-Encoding' | 'body', expected: string, seen: string): TensormemError {
    this.failure = invalidArgument(field, `${expected} in the chunked body`, seen, 'MALFORMED_REQUEST');
    return this.failure;
  }
}
