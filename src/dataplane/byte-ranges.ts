/**
 * The two range headers of the data plane, parsed against an array's byte size. Only the `bytes` unit
 * is served; a GET's `Range` may list up to MAX_RANGES ranges (RFC 9110 §14.1.2), each served as a part
 * of a `multipart/byteranges` answer when more than one selects a byte (./data-plane-server.ts).
 */
import { TensormemError, invalidArgument, outOfRange } from '../errors';
import { listElements } from './http1-head';

/**
 * The most ranges one `Range` header may list: each is a part with a head of its own, so a client
 * cannot have the daemon build and send an unbounded set of part heads (or many tiny parts) for one
 * short request (RFC 9110 §14.2 lets a server refuse "a set of many small ranges").
 */
export const MAX_RANGES = 64;

/**
 * How many ranges of one `Range` header may hold the same byte. RFC 9110 §14.2 lets a server reject "a
 * ranges-specifier with more than two overlapping ranges"; allowing two keeps the body of a multipart
 * answer within twice the array (plus the part heads), whatever a client lists.
 */
export const MAX_OVERLAPPING_RANGES = 2;

/** [start, start + length) of an array. */
export interface ByteRange {
  start: number;
  length: number;
}

/**
 * A position or suffix length of a `Range` header: any number of digits, since a value that large only
 * says "past the end" (the caller clips a last position or suffix length to the array, and a first
 * position past it is unsatisfiable). Infinity stands for any value of 2^53 or more, all of them past
 * the end of any array.
 */
function rangePosition(text: string): number {
  const value = Number(text);
  return Number.isSafeInteger(value) ? value : Infinity;
}

/**
 * `Range: bytes=…` of an array of `size` bytes: the ranges it selects, in the order listed; undefined
 * without the header or with another unit (the whole array). Each element is `a-b` (inclusive), `a-`
 * (to the end) or `-n` (the last n bytes); a last position past the array, or a suffix longer than it,
 * is clipped to it, however many digits it has (RFC 9110 §14.1.2). An element that selects no byte
 * (starting at or past the end, a suffix of 0 bytes, any range of a 0-byte array) is dropped; when none
 * is left the header is OUT_OF_RANGE (416). A malformed element, more than MAX_RANGES elements, or a
 * byte in more than MAX_OVERLAPPING_RANGES ranges is INVALID_ARGUMENT (400). Overlapping ranges within
 * that bound are served as listed, neither merged nor reordered.
 */
export function parseRanges(header: string | undefined, size: number): ByteRange[] | undefined {
  if (header === undefined) return undefined;
  // A unit other than bytes is ignored, as RFC 9110 §14.2 requires of an origin server ("MUST ignore a
  // Range header field that contains a range unit it does not understand"): the whole array.
  const rangeSet = /^\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*=(.*)$/.exec(header);
  if (rangeSet && rangeSet[1].toLowerCase() !== 'bytes') return undefined;
  // The ranges are a list, whose empty elements ("bytes=0-1," or "bytes=, 0-1") are no range.
  const elements = rangeSet ? listElements(rangeSet[2]) : [];
  if (elements.length > MAX_RANGES) {
    throw new TensormemError('INVALID_ARGUMENT', 'INVALID_ARGUMENT', `Range: ${elements.length} ranges listed, more than the ${MAX_RANGES} one request may ask for`, {
      field: 'Range',
      ranges: String(elements.length),
      max_ranges: String(MAX_RANGES),
    });
  }
  if (elements.length === 0) throw invalidArgument('Range', 'bytes=FIRST-LAST, bytes=FIRST- or bytes=-SUFFIX_LENGTH', header);
  const ranges = elements.map((element) => rangeOf(element, size, header)).filter((range): range is ByteRange => range !== undefined);
  if (ranges.length === 0) {
    if (elements.length === 1) {
      const message = elements[0].startsWith('-') ? `${header} selects no bytes of a ${size}-byte array` : `${header} starts at or past the end of the array (${size} bytes)`;
      throw outOfRange('Range', message);
    }
    throw outOfRange('Range', `none of the ${elements.length} ranges of ${header} selects a byte of the array (${size} bytes)`);
  }
  const overlapping = mostOverlapping(ranges);
  if (overlapping.length > MAX_OVERLAPPING_RANGES) {
    const byte = Math.max(...overlapping.map((range) => range.start));
    throw new TensormemError(
      'INVALID_ARGUMENT',
      'INVALID_ARGUMENT',
      `Range: byte ${byte} is in ${overlapping.length} of the ranges (${overlapping.map(shown).join(', ')}), more than the ${MAX_OVERLAPPING_RANGES} overlapping ranges served; ask for it once or twice`,
      { field: 'Range', overlapping_ranges: String(overlapping.length), max_overlapping_ranges: String(MAX_OVERLAPPING_RANGES) },
    );
  }
  return ranges;
}

/**
 * One element of a `Range` list against an array of `size` bytes; undefined when it selects no byte.
 * A malformed element names the whole header, as the client sent it.
 */
function rangeOf(element: string, size: number, header: string): ByteRange | undefined {
  const match = /^(\d*)\s*-\s*(\d*)$/.exec(element);
  if (!match || (match[1] === '' && match[2] === '')) throw invalidArgument('Range', 'bytes=FIRST-LAST, bytes=FIRST- or bytes=-SUFFIX_LENGTH', header);
  if (match[1] === '') {
    const length = Math.min(rangePosition(match[2]), size);
    return length === 0 ? undefined : { start: size - length, length };
  }
  const first = rangePosition(match[1]);
  const last = match[2] === '' ? Infinity : rangePosition(match[2]);
  // Compared exactly: past 2^53 both are Infinity, and a last position before the first would pass as a range past the end.
  if (match[2] !== '' && BigInt(match[2]) < BigInt(match[1])) throw invalidArgument('Range', 'a last byte position at or after the first', header);
  if (first >= size) return undefined;
  return { start: first, length: Math.min(last, size - 1) - first + 1 };
}

/** The largest set of `ranges` that share a byte (a sweep over their starts and ends, in position order). */
function mostOverlapping(ranges: ByteRange[]): ByteRange[] {
  const byStart = [...ranges].sort((a, b) => a.start - b.start);
  let open: ByteRange[] = [];
  let most: ByteRange[] = [];
  for (const range of byStart) {
    open = open.filter((other) => other.start + other.length > range.start);
    open.push(range);
    if (open.length > most.length) most = [...open];
  }
  return most;
}

/** A range as a client writes it: `FIRST-LAST`, inclusive. */
function shown(range: ByteRange): string {
  return `${range.start}-${range.start + range.length - 1}`;
}

/**
 * `Content-Range: bytes a-b/total` of a PUT: where the body goes. `total` is `*` or the array's size;
 * b − a + 1 must equal the body's Content-Length (a chunked body has none: its length is checked as it
 * arrives). Without the header the body goes at offset 0.
 * A range past the array's end is OUT_OF_RANGE (416), checked before any byte is written. Positions
 * are read exactly, however many digits they have (leading zeros included): one of 2^53 or more
 * passes the end of any array, so it is OUT_OF_RANGE like any other range past the end, and never
 * rounded to a neighbouring number.
 */
export function parseContentRange(header: string | undefined, size: number, contentLength?: number): ByteRange {
  if (header === undefined) {
    if (contentLength === undefined) return { start: 0, length: size };
    if (contentLength > size) throw outOfRange('Content-Length', `${contentLength} bytes at offset 0 pass the end of the array (${size} bytes)`);
    return { start: 0, length: contentLength };
  }
  const match = /^\s*bytes\s+(\d+)\s*-\s*(\d+)\s*\/\s*(\d+|\*)\s*$/i.exec(header);
  if (!match) throw invalidArgument('Content-Range', 'bytes FIRST-LAST/SIZE or bytes FIRST-LAST/*', header);
  const first = BigInt(match[1]);
  const last = BigInt(match[2]);
  if (last < first) throw invalidArgument('Content-Range', 'a last byte position at or after the first', header);
  if (match[3] !== '*' && BigInt(match[3]) !== BigInt(size)) {
    throw invalidArgument('Content-Range', `the array's size ${size} (or *) after the slash`, header);
  }
  if (contentLength !== undefined && last - first + 1n !== BigInt(contentLength)) throw invalidArgument('Content-Range', `a range of Content-Length (${contentLength}) bytes`, header);
  if (last >= BigInt(size)) throw outOfRange('Content-Range', `${header} passes the end of the array (${size} bytes)`);
  return { start: Number(first), length: Number(last - first + 1n) };
}
