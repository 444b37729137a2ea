/**
 * The two range headers of the data plane, parsed against an array's byte size. Only the `bytes`
 * unit and a single range are served; a client asking for several ranges gets INVALID_ARGUMENT.
 */
import { invalidArgument, outOfRange } from '../errors';
import { listElements } from './http1-head';

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
 * `Range: bytes=a-b` (inclusive), `bytes=a-` (to the end) or `bytes=-n` (the last n bytes) of an
 * array of `size` bytes; undefined without the header or with another unit (the whole array). A range that selects no byte
 * (starting at or past the end, a suffix of 0 bytes, any suffix of a 0-byte array) is OUT_OF_RANGE
 * (416); a last position past the array, or a suffix longer than it, is clipped to it, however many
 * digits it has (RFC 9110 §14.1.2).
 */
export function parseRange(header: string | undefined, size: number): ByteRange | undefined {
  if (header === undefined) return undefined;
  // A unit other than bytes is ignored, as RFC 9110 §14.2 requires of an origin server ("MUST ignore a
  // Range header field that contains a range unit it does not understand"): the whole array.
  const rangeSet = /^\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*=(.*)$/.exec(header);
  if (rangeSet && rangeSet[1].toLowerCase() !== 'bytes') return undefined;
  // The ranges are a list, whose empty elements ("bytes=0-1," or "bytes=, 0-1") are no range.
  const ranges = rangeSet ? listElements(rangeSet[2]) : [];
  if (ranges.length > 1) throw invalidArgument('Range', 'a single byte range (multiple ranges are not served)', header);
  const match = ranges.length === 1 ? /^(\d*)\s*-\s*(\d*)$/.exec(ranges[0]) : null;
  if (!match || (match[1] === '' && match[2] === '')) throw invalidArgument('Range', 'bytes=FIRST-LAST, bytes=FIRST- or bytes=-SUFFIX_LENGTH', header);
  if (match[1] === '') {
    const length = Math.min(rangePosition(match[2]), size);
    if (length === 0) throw outOfRange('Range', `${header} selects no bytes of a ${size}-byte array`);
    return { start: size - length, length };
  }
  const first = rangePosition(match[1]);
  const last = match[2] === '' ? Infinity : rangePosition(match[2]);
  if (last < first) throw invalidArgument('Range', 'a last byte position at or after the first', header);
  if (first >= size) throw outOfRange('Range', `${header} starts at or past the end of the array (${size} bytes)`);
  return { start: first, length: Math.min(last, size - 1) - first + 1 };
}

/**
 * `Content-Range: bytes a-b/total` of a PUT: where the body goes. `total` is `*` or the array's size;
 * b − a + 1 must equal the body's Content-Length. Without the header the body goes at offset 0.
 * A range past the array's end is OUT_OF_RANGE (416), checked before any byte is written. Positions
 * are read exactly, however many digits they have (leading zeros included): one of 2^53 or more
 * passes the end of any array, so it is OUT_OF_RANGE like any other range past the end, and never
 * rounded to a neighbouring number.
 */
export function parseContentRange(header: string | undefined, size: number, contentLength: number): ByteRange {
  if (header === undefined) {
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
  if (last - first + 1n !== BigInt(contentLength)) throw invalidArgument('Content-Range', `a range of Content-Length (${contentLength}) bytes`, header);
  if (last >= BigInt(size)) throw outOfRange('Content-Range', `${header} passes the end of the array (${size} bytes)`);
  return { start: Number(first), length: contentLength };
}
