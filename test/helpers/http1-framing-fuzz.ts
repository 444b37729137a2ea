/**
 * Differential fuzzing of the data plane's HTTP/1.1 request framing (src/dataplane/http1-*.ts,
 * chunked-body.ts) against Node's llhttp in its strict mode (no lenient flags, as `http.createServer`
 * runs it): the request streams a seeded generator makes, what each parser reads of one, and where two
 * readings part. A front proxy that frames requests as llhttp does and a daemon that frames them
 * otherwise can be made to disagree on where a request ends (request smuggling, RFC 9112 §11.2).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:net';
import { Http1Server, HttpExchange } from '../../src/dataplane/http1-server';
import { rng } from './rng';

/** One request as a parser read it: latin1 text throughout. */
export interface SeenRequest {
  method: string;
  url: string;
  /** Lower-case names, repeated ones joined with ", ", values without the SP/HTAB around them. */
  headers: Record<string, string>;
  body: string;
  /** The whole body was read (its length reached, or its last chunk and trailers). */
  complete: boolean;
  /** Ours: reading the body failed with this code or reason (MALFORMED_REQUEST: its framing refused). */
  bodyError?: string;
}

/** What one parser made of one stream: the requests it read, in order, and why it stopped. */
export interface Reading {
  requests: SeenRequest[];
  /**
   * llhttp: 'end' (the whole stream read), 'closed' (a message without keep-alive, the rest unread), an
   * HPE_ error code (refused), 'host' (an HTTP/1.1 request without Host, which Node's server answers
   * 400; not among the requests), 'upgrade'. Ours: 'end', or 'refused NNN' (the head answered 4xx, or 501 for a transfer coding, and the connection closed).
   */
  stop: string;
}

// Node's own binding of llhttp, as its http server drives it (node:_http_common is Node's module for that).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { HTTPParser, methods } = require('node:_http_common') as {
  HTTPParser: LlhttpParserClass;
  methods: string[];
};

interface LlhttpParser {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  execute(data: Buffer): number | (Error & { code: string; bytesParsed: number });
  finish(): undefined | (Error & { code: string });
  close(): void;
  [key: number]: unknown;
}

interface LlhttpParserClass {
  new (): LlhttpParser;
  REQUEST: number;
  kOnHeaders: number;
  kOnHeadersComplete: number;
  kOnBody: number;
  kOnMessageComplete: number;
  kOnExecute: number;
  kLenientNone: number;
}

/** Lower-case names, values trimmed of SP/HTAB, repeated names joined with ", " (as http1-head.ts keeps them). */
function headerMap(raw: string[]): Record<string, string> {
  const headers: Record<string, string> = {};
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i].toLowerCase();
    const value = raw[i + 1].replace(/^[ \t]+|[ \t]+$/g, '');
    headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
  }
  return headers;
}

/** The path and query of an absolute-form target, as the data plane reads it; any other target as it is. */
function originForm(target: string): string {
  const absolute = /^https?:\/\/[^/?#]*/i.exec(target);
  if (!absolute) return target;
  const rest = target.slice(absolute[0].length);
  return rest.startsWith('/') ? rest : `/${rest}`;
}

/** What llhttp (strict, as Node's http server runs it) reads of `pieces`, fed in order as separate reads. */
export function llhttpReading(pieces: Buffer[]): Reading {
  const parser = new HTTPParser();
  parser.initialize(HTTPParser.REQUEST, {}, 0, HTTPParser.kLenientNone);
  const requests: SeenRequest[] = [];
  let current: SeenRequest | undefined;
  /** The current request has no keep-alive: the connection ends after it. */
  let lastOne = false;
  /** Requests read before llhttp (or Node's server) stopped: those after are nobody's. */
  let served: number | undefined;
  let partialHeaders: string[] = [];
  let partialUrl = '';
  let stop: string | undefined;
  // Node's parser hands over headers in batches (parserOnHeaders) when they span reads or are many.
  parser[HTTPParser.kOnHeaders] = (headers: string[], url: string) => {
    partialHeaders.push(...headers);
    partialUrl += url;
  };
  parser[HTTPParser.kOnHeadersComplete] = (major: number, minor: number, headers: string[] | undefined, method: number, url: string | undefined, _status: number, _message: string, upgrade: boolean, keepAlive: boolean) => {
    const raw = headers ?? partialHeaders;
    const target = url || partialUrl;
    partialHeaders = [];
    partialUrl = '';
    current = { method: methods[method], url: originForm(target), headers: headerMap(raw), body: '', complete: false };
    lastOne = !keepAlive;
    requests.push(current);
    if (stop !== undefined) return 0;
    // Node's http server answers an HTTP/1.1 request without Host 400 (requireHostHeader); the data plane
    // refuses it too (400 and close), so the comparison ends there (Node may still serve a request
    // pipelined behind it in the same read, which the data plane never reads).
    if (major === 1 && minor === 1 && current.headers.host === undefined) {
      stop = 'host';
      served = requests.length - 1;
    } else if (upgrade) {
      stop = 'upgrade';
      served = requests.length;
    }
    return 0;
  };
  parser[HTTPParser.kOnBody] = (chunk: Buffer, start?: number, length?: number) => {
    if (current && stop === undefined) current.body += start === undefined ? chunk.toString('latin1') : chunk.toString('latin1', start, start + (length ?? 0));
  };
  parser[HTTPParser.kOnMessageComplete] = () => {
    // Trailer fields come in through kOnHeaders too (Node's parserOnMessageComplete drops them so).
    partialHeaders = [];
    partialUrl = '';
    if (!current) return;
    current.complete = true;
    if (lastOne && stop === undefined) {
      stop = 'closed';
      served = requests.length;
    }
  };
  parser[HTTPParser.kOnExecute] = () => undefined;
  for (const piece of pieces) {
    if (stop !== undefined) break;
    const result = parser.execute(piece);
    if (result instanceof Error) {
      // Data after a message without keep-alive: Node's server has closed (or is closing) the connection.
      stop ??= result.code === 'HPE_CLOSED_CONNECTION' ? 'closed' : result.code;
      break;
    }
  }
  if (stop === undefined) {
    const result = parser.finish();
    stop = result instanceof Error ? result.code : 'end';
  }
  parser.close();
  return { requests: requests.slice(0, served), stop };
}

/** The data plane's HTTP/1.1 server, in process on a unix socket, recording what it reads of each stream. */
export class OursUnderTest {
  private readonly directory = mkdtempSync(join(tmpdir(), 'tensormem-framing-fuzz-'));
  readonly path = join(this.directory, 'data.sock');
  private current: SeenRequest[] = [];
  readonly server = new Http1Server((exchange) => this.handle(exchange), { keepAliveTimeoutMs: 2_000, headTimeoutMs: 2_000, drainTimeoutMs: 500, stallTimeoutMs: 2_000 });

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.server.listen(this.path, resolve));
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.server.close(() => resolve()));
    rmSync(this.directory, { recursive: true, force: true });
  }

  private handle(exchange: HttpExchange): void {
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(exchange.headers)) if (value !== undefined) headers[name] = value;
    const seen: SeenRequest = { method: exchange.method, url: exchange.url, headers, body: '', complete: false };
    this.current.push(seen);
    exchange
      .readBody((piece) => {
        seen.body += Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength).toString('latin1');
      })
      .then(
        () => {
          seen.complete = true;
          exchange.end('ok');
        },
        (error: Error & { code?: string; reason?: string }) => {
          seen.bodyError = error.reason ?? error.code ?? error.message;
          if (error.reason === 'MALFORMED_REQUEST') {
            exchange.statusCode = 400;
            exchange.end('malformed');
          } else {
            exchange.destroy();
          }
        },
      );
  }

  /**
   * Sends `pieces` on one connection (each a write of its own, a timer tick apart, so that most arrive as
   * reads of their own), ends its side, and reads the answers until the server closes.
   */
  async reading(pieces: Buffer[]): Promise<Reading> {
    this.current = [];
    const answers = await new Promise<string>((resolve, reject) => {
      const socket = connect(this.path, async () => {
        for (const [index, piece] of pieces.entries()) {
          if (index > 0) await new Promise((done) => setTimeout(done, 1));
          if (socket.destroyed || !socket.writable) return;
          socket.write(piece);
        }
        if (!socket.destroyed && socket.writable) socket.end();
      });
      let text = '';
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`the data plane did not close the connection in 5 s; answers so far: ${JSON.stringify(text.slice(0, 500))}`));
      }, 5_000);
      socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
      socket.on('error', () => undefined);
      socket.on('close', () => {
        clearTimeout(timer);
        resolve(text);
      });
    });
    // The server sees the close after the client: wait for it to let go of the connection.
    for (let i = 0; i < 1000 && this.server.openConnections > 0; i++) await new Promise((done) => setImmediate(done));
    const refusal = /HTTP\/1\.1 ([45]\d\d) [^\r]*\r\n(?:[^\r]+\r\n)*\r\n\{/.exec(answers);
    return { requests: this.current, stop: refusal ? `refused ${refusal[1]}` : 'end' };
  }
}

/**
 * Where ours and llhttp part on one stream, or undefined where they do not. Allowed: the same requests
 * (method, target, headers, body), or ours refusing (a head answered 4xx or 501, a chunked body's framing
 * refused) at or before the request where they would part, or ours stopping early (it closed the
 * connection where llhttp would read on: nothing read that llhttp did not). A divergence is ours
 * reading a request llhttp does not, or one llhttp reads otherwise, or reading on where llhttp refused.
 */
export function divergence(ours: Reading, reference: Reading): string | undefined {
  for (const [index, seen] of ours.requests.entries()) {
    const expected = reference.requests[index];
    // llhttp knows a fixed list of methods and refuses some target bytes; ours takes any token method
    // and visible ASCII target, and answers them itself. Both end the request line at the same CRLF:
    // not a framing, and nothing after it is compared (llhttp read no further).
    if (expected === undefined && index === reference.requests.length && /^HPE_INVALID_(METHOD|URL)$/.test(reference.stop)) return undefined;
    if (expected === undefined) {
      return `ours read request ${index} (${seen.method} ${seen.url}${seen.complete ? `, body ${JSON.stringify(seen.body)}` : ''}), llhttp none (it stopped: ${reference.stop})`;
    }
    if (seen.method !== expected.method || seen.url !== expected.url) {
      return `request ${index}: ours read ${seen.method} ${seen.url}, llhttp ${expected.method} ${expected.url}`;
    }
    if (JSON.stringify(sorted(seen.headers)) !== JSON.stringify(sorted(expected.headers))) {
      return `request ${index}: ours read headers ${JSON.stringify(sorted(seen.headers))}, llhttp ${JSON.stringify(sorted(expected.headers))}`;
    }
    if (seen.bodyError === 'MALFORMED_REQUEST') return undefined;
    if (seen.complete && expected.complete && seen.body !== expected.body) {
      return `request ${index}: ours read the body ${JSON.stringify(seen.body)}, llhttp ${JSON.stringify(expected.body)}`;
    }
    if (seen.complete && !expected.complete) {
      return `request ${index}: ours read its body whole (${JSON.stringify(seen.body)}) where llhttp did not (it stopped: ${reference.stop})`;
    }
    if (!seen.complete && expected.complete) {
      return `request ${index}: ours waited for more of its body (had ${JSON.stringify(seen.body)}, ${seen.bodyError ?? 'no error'}) where llhttp read it whole: ${JSON.stringify(expected.body)}`;
    }
    if (!seen.complete) return undefined;
  }
  return undefined;
}

function sorted(headers: Record<string, string>): Array<[string, string]> {
  return Object.entries(headers).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

// ---------------------------------------------------------------------------------------------------
// The generator: requests built field by field, each field sometimes in one of the forms that parsers
// are known to read differently, then sometimes a byte changed anywhere.

type Random = () => number;

function pick<T>(random: Random, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)];
}

function chance(random: Random, p: number): boolean {
  return random() < p;
}

/** Each letter upper or lower case at random. */
function oddCase(random: Random, text: string): string {
  return [...text].map((c) => (chance(random, 0.5) ? c.toUpperCase() : c.toLowerCase())).join('');
}

const BODY_PIECES = ['hello', 'x', '\r\n', '0\r\n\r\n', 'GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n', '5\r\nabcde\r\n', ';', '"', '\0', '\n', 'Content-Length: 3\r\n'];

function bodyText(random: Random): string {
  const parts: string[] = [];
  const count = Math.floor(random() * 4);
  for (let i = 0; i < count; i++) parts.push(chance(random, 0.6) ? pick(random, BODY_PIECES) : String.fromCharCode(...Array.from({ length: 1 + Math.floor(random() * 12) }, () => 0x20 + Math.floor(random() * 0x5f))));
  return parts.join('');
}

/** Whitespace and look-alikes put around a value: SP and HTAB are OWS; the rest are not (RFC 9110 §5.6.3). */
const PADDING = [' ', '\t', '  ', '\x0b', '\x0c', '\xa0', '\x85', '\r'];

function padded(random: Random, value: string): string {
  if (!chance(random, 0.05)) return value;
  const pad = pick(random, PADDING);
  return chance(random, 0.5) ? `${pad}${value}` : `${value}${pad}`;
}

function contentLengthValue(random: Random, length: number): string {
  if (!chance(random, 0.1)) return padded(random, String(length));
  return pick(random, [`0${length}`, `+${length}`, `-${length}`, `0x${length.toString(16)}`, `${length}, ${length}`, `${length},${length + 1}`, `${length} ${length}`, `${length + 1}`, `${Math.max(0, length - 1)}`, '', `${length}.0`, `${length}\0`]);
}

const TRANSFER_CODINGS = ['chunked', 'chunked', 'chunked', 'Chunked', 'CHUNKED', 'chunked, chunked', 'identity', 'identity, chunked', 'chunked, identity', 'gzip, chunked', 'chunked,', ', chunked', 'xchunked', 'chunked\x0b', 'chunked\xa0', 'chunk', '"chunked"', 'chunked;q=1', ''];

/** A chunk-size line's size in one of its forms, valid or not. */
function chunkSize(random: Random, size: number): string {
  const hex = size.toString(16);
  if (!chance(random, 0.06)) return chance(random, 0.5) ? hex : hex.toUpperCase();
  return pick(random, [`00${hex}`, `+${hex}`, `-${hex}`, `0x${hex}`, ` ${hex}`, `${hex} `, `${hex}\t`, `${(size + 1).toString(16)}`, `${hex}\0`, `${hex}g`, '', `${'0'.repeat(20)}${hex}`]);
}

const EXTENSIONS = [';a', ';a=b', ' ;a=b', '\t;a', ';a="x;y"', ';a="x\r\ny"', ';a="x\ny"', ';a=b c', ';', ';a="\\"";b', ';a=b;c=d', '; a = b', ';a="unterminated'];

const TRAILERS = ['X-T: 1', 'X-T:1', 'Content-Length: 5', 'Transfer-Encoding: chunked', ' folded', 'bad line', 'X-T : 1', 'X-T: a\x01b'];

/** A body in chunked framing, sometimes with odd sizes, extensions, line ends and trailers. */
function chunkedBody(random: Random, body: string): string {
  let out = '';
  let at = 0;
  while (at < body.length) {
    const size = Math.min(body.length - at, 1 + Math.floor(random() * 8));
    const ext = chance(random, 0.08) ? pick(random, EXTENSIONS) : '';
    out += `${chunkSize(random, size)}${ext}${lineEnd(random)}${body.slice(at, at + size)}${chance(random, 0.04) ? pick(random, ['\n', '\r', '', 'x\r\n']) : '\r\n'}`;
    at += size;
  }
  out += `${chance(random, 0.1) ? pick(random, ['000', '0;a=b', '0 ', '00000000000000000000']) : '0'}${lineEnd(random)}`;
  if (chance(random, 0.15)) for (let i = Math.floor(random() * 3); i > 0; i--) out += `${pick(random, TRAILERS)}${lineEnd(random)}`;
  return `${out}${lineEnd(random)}`;
}

/** CRLF mostly; a bare LF or CR, or CR CR LF, now and then. */
function lineEnd(random: Random): string {
  return chance(random, 0.01) ? pick(random, ['\n', '\r', '\r\r\n', '\n\r']) : '\r\n';
}

const CONNECTIONS = ['close', 'keep-alive', 'Keep-Alive', 'CLOSE', 'keep-alive, close', 'close, keep-alive', 'x-close', 'keep-alive-x', 'keep-alive-', 'closed', 'te', 'upgrade, keep-alive'];

const METHODS = ['GET', 'PUT', 'PUT', 'POST', 'HEAD', 'DELETE', 'OPTIONS'];
const TARGETS = ['/', '/a', '/arrays/7', '/x?y=1&z=%20', 'http://h:1/abs?q', '/a;b', '/%00'];

/** One request, valid or mutated in its framing. */
function request(random: Random): string {
  const version = chance(random, 0.15) ? '1.0' : '1.1';
  const lines: string[] = [`${pick(random, METHODS)} ${pick(random, TARGETS)} HTTP/${version}`];
  const headers: Array<[string, string]> = [];
  if (version === '1.1' ? !chance(random, 0.03) : chance(random, 0.5)) headers.push(['Host', chance(random, 0.05) ? pick(random, ['a b', 'x:1', '[::1]:2', 'x\0']) : 'x']);
  const body = bodyText(random);
  const framing = pick(random, ['none', 'none', 'length', 'length', 'length', 'chunked', 'chunked', 'chunked', 'chunked', 'both', 'both-reversed', 'two-lengths', 'two-codings']);
  let encoded = '';
  const codingName = () => (chance(random, 0.2) ? oddCase(random, 'Transfer-Encoding') : 'Transfer-Encoding');
  const lengthName = () => (chance(random, 0.2) ? oddCase(random, 'Content-Length') : 'Content-Length');
  const coding = () => (chance(random, 0.15) ? pick(random, TRANSFER_CODINGS) : 'chunked');
  switch (framing) {
    case 'length':
      headers.push([lengthName(), contentLengthValue(random, body.length)]);
      encoded = body;
      break;
    case 'chunked':
      headers.push([codingName(), padded(random, coding())]);
      encoded = chunkedBody(random, body);
      break;
    case 'both':
    case 'both-reversed': {
      const pair: Array<[string, string]> = [
        [codingName(), padded(random, coding())],
        [lengthName(), contentLengthValue(random, chance(random, 0.5) ? body.length : Math.floor(random() * 20))],
      ];
      headers.push(...(framing === 'both' ? pair : pair.reverse()));
      encoded = chance(random, 0.7) ? chunkedBody(random, body) : body;
      break;
    }
    case 'two-lengths':
      headers.push([lengthName(), contentLengthValue(random, body.length)], [lengthName(), contentLengthValue(random, chance(random, 0.5) ? body.length : body.length + 1)]);
      encoded = body;
      break;
    case 'two-codings':
      headers.push([codingName(), padded(random, coding())], [codingName(), padded(random, coding())]);
      encoded = chunkedBody(random, body);
      break;
    default:
      encoded = chance(random, 0.2) ? body : '';
  }
  if (chance(random, 0.25)) headers.push([chance(random, 0.2) ? oddCase(random, 'Connection') : 'Connection', padded(random, pick(random, CONNECTIONS))]);
  if (chance(random, 0.1)) headers.push(['Expect', pick(random, ['100-continue', '100-Continue', 'nothing'])]);
  if (chance(random, 0.1)) headers.push(['X-Extra', padded(random, pick(random, ['a', 'a,b', 'x'.repeat(8000), 'a\x01b', 'a\x7fb', '\xff', 'a"b', 'a\tb', '\x80\xa0']))]);
  shuffleSome(random, headers);
  for (const [name, value] of headers) {
    // Whitespace before the colon, obs-fold (a value continued on a line that starts with SP or HTAB).
    const separator = chance(random, 0.02) ? pick(random, [' :', '\t:', ':\r\n ', ': x\r\n\t']) : ':';
    lines.push(`${name}${separator}${value.startsWith(' ') || value.startsWith('\t') || chance(random, 0.3) ? '' : ' '}${value}`);
  }
  return lines.map((line) => `${line}${lineEnd(random)}`).join('') + lineEnd(random) + encoded;
}

/** Swaps a pair of headers now and then (framing headers before Host, after Connection...). */
function shuffleSome(random: Random, items: unknown[]): void {
  if (items.length < 2 || !chance(random, 0.3)) return;
  const i = Math.floor(random() * items.length);
  const j = Math.floor(random() * items.length);
  [items[i], items[j]] = [items[j], items[i]];
}

const NOISE = ['\r', '\n', ' ', '\t', ':', ';', '0', 'a', 'F', '\0', '\x0b', '"', ',', '\r\n', '\xff'];

/** A stream of one to three requests (sometimes after a blank line), sometimes with a byte changed, cut into one to four writes. */
export function fuzzStream(seed: number): Buffer[] {
  const random = rng(seed);
  let text = chance(random, 0.05) ? pick(random, ['\r\n', '\n', '\r\n\r\n']) : '';
  for (let count = 1 + Math.floor(random() * 3); count > 0; count--) text += request(random);
  if (chance(random, 0.15)) {
    const at = Math.floor(random() * (text.length + 1));
    const action = Math.floor(random() * 3);
    const noise = pick(random, NOISE);
    text = action === 0 ? text.slice(0, at) + noise + text.slice(at) : action === 1 ? text.slice(0, at) + noise + text.slice(at + 1) : text.slice(0, at) + text.slice(at + 1);
  }
  const bytes = Buffer.from(text, 'latin1');
  const cuts = Array.from({ length: Math.floor(random() * 4) }, () => Math.floor(random() * bytes.byteLength)).sort((a, b) => a - b);
  const pieces: Buffer[] = [];
  let from = 0;
  for (const cut of cuts) {
    if (cut > from) pieces.push(bytes.subarray(from, cut));
    from = Math.max(from, cut);
  }
  pieces.push(bytes.subarray(from));
  return pieces;
}
