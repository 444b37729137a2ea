/**
 * An HTTP/1.1 request head as the data plane's server reads it (http1-server.ts): the request line and
 * headers parsed strictly (CRLF line ends only, a target in visible ASCII, one valid Host in HTTP/1.1, no NUL or other control
 * byte but HTAB in a value, a Content-Length of one decimal number, a Transfer-Encoding of chunked alone, once, and then
 * frames the body, never both), or why the head is malformed (or names a transfer coding other than chunked: 501, not 400). Where a front proxy's strict parser (llhttp) would refuse a
 * framing it is refused here too (test/unit/http1-framing-fuzz.test.ts), so that no request is read here that it did not forward.
 */

/** Largest request head (request line and headers) accepted. */
export const MAX_HEAD_BYTES = 16 * 1024;

export const HEAD_END = Buffer.from('\r\n\r\n');

/** A token (RFC 9110 §5.6.2) as a pattern to build on: a field name, a method, a chunk extension's name or value. */
export const TOKEN_PATTERN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";
/** A quoted-string (RFC 9110 §5.6.4) as a pattern to build on: qdtext and quoted-pairs between DQUOTEs. */
export const QUOTED_STRING_PATTERN = '"(?:[\\t \\x21\\x23-\\x5b\\x5d-\\x7e\\x80-\\xff]|\\\\[\\t \\x21-\\x7e\\x80-\\xff])*"';

/** A token, whole. */
export const TOKEN = new RegExp(`^${TOKEN_PATTERN}$`);

/** A Host value: uri-host (an IP literal in brackets, or a reg-name, an IPv4 address among them; empty allowed) and an optional port (RFC 9112 §3.2, RFC 3986 §3.2.2). */
const HOST = /^(?:\[[0-9A-Za-z:._~!$&'()*+,;=-]+\]|[0-9A-Za-z._~!$&'()*+,;=%-]*)(?::\d*)?$/;

export interface RequestHead {
  method: string;
  url: string;
  /** Lower-case names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  /** The body's length when Content-Length frames it; 0 when there is none, or when it is chunked. */
  contentLength: number;
  /** Transfer-Encoding (ending in chunked, with no Content-Length beside it) frames the body. */
  chunked: boolean;
  keepAlive: boolean;
  expectsContinue: boolean;
}

/** Why a head is malformed, and what is at fault: a header's name, or "request line" / "header line" for a line that names none. */
export interface MalformedHead {
  malformed: string;
  field?: string;
  /**
   * Not malformed but a transfer coding this server does not decode (gzip, chunked): RFC 9112 §6.1
   * says 501 for it, where a malformed head is 400. The first such coding's name.
   */
  unsupportedCoding?: string;
}

/**
 * One transfer coding (RFC 9112 §7: `token *( OWS ";" OWS token BWS "=" BWS ( token / quoted-string ) )`),
 * its name captured. A quoted-string holding a comma is cut by the list's split and fails this: refused as malformed.
 */
const TRANSFER_CODING = new RegExp(`^(${TOKEN_PATTERN})(?:[ \\t]*;[ \\t]*${TOKEN_PATTERN}[ \\t]*=[ \\t]*(?:${TOKEN_PATTERN}|${QUOTED_STRING_PATTERN}))*$`);

/** Parses a request head (without its final blank line). */
export function parseHead(text: string): RequestHead | MalformedHead {
  // Lines end in CRLF only; a CR or LF anywhere else is malformed (RFC 9112 §2.2 lets a server reject
  // a bare CR, and a bare LF read as a line end by one parser and not by another smuggles requests).
  const lines = text.split('\r\n');
  // The target is visible ASCII (RFC 9112 §3.2, RFC 3986: any other byte is percent-encoded): a raw
  // byte past 0x7E or a control byte is an invalid request line (400), not an id to look up. A minor
  // version above 1 is read as HTTP/1.1 (RFC 9110 §2.5: a recipient SHOULD process it as the highest
  // minor version it implements).
  const requestLine = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+) ([\x21-\x7e]+) HTTP\/1\.(\d)$/.exec(lines[0]);
  if (!requestLine) return { malformed: `malformed request line ${JSON.stringify(lines[0].slice(0, 200))}: expected "METHOD /path HTTP/1.1" (the path in visible ASCII, other bytes percent-encoded)`, field: 'request line' };
  const http10 = requestLine[3] === '0';
  const headers: Record<string, string> = Object.create(null) as Record<string, string>;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i];
    const colon = line.indexOf(':');
    const name = colon > 0 ? line.slice(0, colon) : '';
    if (!TOKEN.test(name)) return { malformed: `malformed header line ${JSON.stringify(line.slice(0, 200))}: expected "Name: value"`, field: 'header line' };
    const rawValue = line.slice(colon + 1);
    const shownValue = () => JSON.stringify(withoutOws(rawValue).slice(0, 200));
    if (/[\r\n]/.test(rawValue)) {
      return { malformed: `header ${name}: a CR or LF is allowed only in the CRLF that ends a line, not inside the value ${shownValue()}`, field: name };
    }
    // RFC 9110 §5.5: a NUL in a field value MUST be rejected (or replaced): parsers that stop at it read
    // a different value than those that do not.
    if (rawValue.includes('\0')) return { malformed: `header ${name}: a NUL byte is not allowed in a header value, as in ${shownValue()}`, field: name };
    // RFC 9110 §5.5: a field value is visible bytes, SP and HTAB; llhttp (a front proxy's parser) refuses
    // any other control byte, so a value with one is read by the two as different requests or not at all.
    const control = /[\x01-\x08\x0b-\x1f\x7f]/.exec(rawValue);
    if (control) return { malformed: `header ${name}: the control byte 0x${control[0].charCodeAt(0).toString(16).padStart(2, '0')} is not allowed in a header value, as in ${shownValue()}`, field: name };
    const key = name.toLowerCase();
    // OWS after a value may hold a tab (RFC 9110 §5.6.3), but llhttp refuses one after a Content-Length or
    // a Transfer-Encoding: a front proxy that refuses a framing never forwards it, one that reads it
    // otherwise would draw another boundary, so the two framing headers are refused so too.
    if ((key === 'content-length' || key === 'transfer-encoding') && /\t[ \t]*$/.test(rawValue)) {
      return { malformed: `header ${name}: a tab after its value ${shownValue()} is refused, as a strict front proxy refuses it`, field: name };
    }
    // RFC 9112 §3.2: a request with more than one Host line MUST be answered 400 (joined, two hosts
    // would read as one list that names neither).
    if (key === 'host' && key in headers) return { malformed: 'more than one Host header: a request names one host (RFC 9112 §3.2)', field: 'Host' };
    const value = withoutOws(rawValue);
    headers[key] = key in headers ? `${headers[key]}, ${value}` : value;
  }
  // RFC 9112 §3.2: an HTTP/1.1 request without Host, or with an invalid one, MUST be answered 400.
  const host = headers.host;
  if (host === undefined && !http10) return { malformed: 'an HTTP/1.1 request must have a Host header (RFC 9112 §3.2): the host and port it was sent to, or empty', field: 'Host' };
  if (host !== undefined && !HOST.test(host)) return { malformed: `Host ${JSON.stringify(host.slice(0, 100))} is not a host with an optional :port (RFC 9112 §3.2)`, field: 'Host' };
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
  // 9112 §6.3 says 400 and close. Chunked applied twice (RFC 9112 §6.1: MUST NOT) and an empty element
  // after chunked ("chunked,") are refused too, as llhttp refuses them: a front proxy that refuses a
  // request never forwards it, one that reads it otherwise would draw another boundary. Empty elements
  // before it (", chunked", or an empty header line first) are no coding (RFC 9110 §5.6.1.2).
  const transferEncoding = headers['transfer-encoding'];
  const elements = transferEncoding === undefined ? [] : transferEncoding.split(',').map(withoutOws);
  const codings = elements.filter((element) => element !== '');
  if (transferEncoding !== undefined && (elements[elements.length - 1].toLowerCase() !== 'chunked' || codings.filter((coding) => coding.toLowerCase() === 'chunked').length > 1)) {
    return { malformed: `Transfer-Encoding ${JSON.stringify(transferEncoding.slice(0, 100))} is not a list of codings that ends in chunked, once, so the body's length cannot be determined`, field: 'Transfer-Encoding' };
  }
  // RFC 9112 §6.3: a Content-Length beside a Transfer-Encoding may be an attempt to smuggle a request
  // (a front proxy that frames by the length forwards what follows the chunked body as the start of
  // the next request, or the next request as this body's end). A server MAY refuse it; llhttp does.
  if (transferEncoding !== undefined && lengthHeader !== undefined) {
    return { malformed: `Content-Length ${JSON.stringify(lengthHeader.slice(0, 100))} beside Transfer-Encoding ${JSON.stringify(transferEncoding.slice(0, 100))}: a request is framed by one of them (RFC 9112 §6.3)`, field: 'Content-Length' };
  }
  // The codings before chunked: one that is no transfer coding (not a token, a parameter without a
  // value) is malformed (400); a well-formed one is a coding this server does not decode (only chunked
  // is), which RFC 9112 §6.1 answers 501 Not Implemented. Either way the body is not read.
  const names = codings.slice(0, -1).map((coding) => TRANSFER_CODING.exec(coding)?.[1]);
  const notCoding = names.indexOf(undefined);
  if (notCoding >= 0) {
    return { malformed: `Transfer-Encoding ${JSON.stringify(transferEncoding!.slice(0, 100))}: ${JSON.stringify(codings[notCoding].slice(0, 100))} is not a transfer coding (a token, then optional ;name=value parameters)`, field: 'Transfer-Encoding' };
  }
  if (names.length > 0) {
    const name = names[0]!.slice(0, 100);
    return {
      malformed: `Transfer-Encoding ${JSON.stringify(transferEncoding!.slice(0, 100))}: the transfer coding ${JSON.stringify(name)} is not implemented (the data plane decodes chunked alone: send the bytes as they are)`,
      field: 'Transfer-Encoding',
      unsupportedCoding: name,
    };
  }
  // Connection options are tokens, matched whole (RFC 9110 §7.6.1): "keep-alive-x" is not keep-alive.
  const connection = listElements(headers.connection ?? '').map((option) => option.toLowerCase());
  // close wins wherever it is listed: "keep-alive, close" in HTTP/1.0 closes (RFC 9112 §9.3).
  const keepAlive = !connection.includes('close') && (!http10 || connection.includes('keep-alive'));
  // The connection is kept after a chunked body (chunked alone, by now) only in HTTP/1.1 (RFC 9112 §6.1:
  // a Transfer-Encoding in an HTTP/1.0 message is treated as faulty framing, the connection closed after).
  const framedPlainly = transferEncoding === undefined || !http10;
  return {
    method: requestLine[1],
    url: originForm(requestLine[2]),
    headers,
    contentLength: transferEncoding !== undefined ? 0 : contentLength,
    chunked: transferEncoding !== undefined,
    keepAlive: keepAlive && framedPlainly,
    // An HTTP/1.0 client knows no interim answers: it would read "100 Continue" as the answer to its
    // request. RFC 9110 §10.1.1: a server MUST ignore a 100-continue expectation in an HTTP/1.0 request.
    expectsContinue: !http10 && (headers.expect ?? '').toLowerCase() === '100-continue',
  };
}

/**
 * Where the first CR or LF of a head that begins at `start` is that is not part of a CRLF: an LF with
 * no CR before it, or a CR followed by any byte but LF (a CR that is the last byte so far may yet be
 * followed by one); -1 when there is none. Only bytes from `from` on are looked at (those before it
 * were, as the head arrived).
 */
export function strayLineBreak(head: Uint8Array, start: number, from = start): number {
  for (let at = Math.max(start, from); at < head.byteLength; at++) {
    if (head[at] === 0x0a && (at === start || head[at - 1] !== 0x0d)) return at;
    if (head[at] === 0x0d && at + 1 < head.byteLength && head[at + 1] !== 0x0a) return at;
  }
  return -1;
}

/**
 * The elements of a header's comma-separated list, trimmed, without the empty ones ("a,", ", a" or two
 * header lines, one empty), which a recipient MUST ignore (RFC 9110 §5.6.1.2).
 */
export function listElements(value: string): string[] {
  return value
    .split(',')
    .map(withoutOws)
    .filter((element) => element !== '');
}

/**
 * `value` without the SP and HTAB around it (OWS, RFC 9110 §5.6.3). Not String.prototype.trim, which
 * takes VT, FF and NBSP (0xA0, a byte of obs-text) for whitespace too: "chunked\xa0" read as chunked
 * where llhttp reads another coding, "3\xa0" as a Content-Length of 3 where llhttp refuses it.
 */
export function withoutOws(value: string): string {
  return value.replace(/^[ \t]+|[ \t]+$/g, '');
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
