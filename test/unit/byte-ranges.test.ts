/**
 * The data plane's range headers (src/dataplane/byte-ranges.ts): what a GET's `Range` selects of an
 * array, and when it selects nothing (416) or is malformed or too many (400).
 */
import { describe, expect, it } from 'vitest';
import { TensormemError } from '../../src/errors';
import { MAX_RANGES, parseContentRange, parseRanges } from '../../src/dataplane/byte-ranges';

/** The kind and field of the error `parse` throws. */
function refusal(parse: () => unknown): { kind: string; field: string | undefined; message: string } {
  try {
    parse();
  } catch (error) {
    expect(error).toBeInstanceOf(TensormemError);
    const domain = error as TensormemError;
    return { kind: domain.kind, field: domain.metadata.field, message: domain.message };
  }
  throw new Error('expected a refusal');
}

describe('parseRanges', () => {
  it('refuses any suffix of a 0-byte array with 416, as it selects no byte', () => {
    for (const header of ['bytes=-5', 'bytes=-1', 'bytes=-0', 'bytes=0-', 'bytes=0-0']) {
      expect(refusal(() => parseRanges(header, 0)), header).toMatchObject({ kind: 'OUT_OF_RANGE', field: 'Range', message: expect.stringContaining(header) });
    }
    expect(refusal(() => parseRanges('bytes=-0', 16))).toMatchObject({ kind: 'OUT_OF_RANGE', field: 'Range' });
  });

  it('clips a last position or suffix length of any number of digits to the array; a first position that large is 416', () => {
    expect(parseRanges('bytes=0-99999999999999999', 16)).toEqual([{ start: 0, length: 16 }]);
    expect(parseRanges('bytes=5-9007199254740992', 16)).toEqual([{ start: 5, length: 11 }]);
    expect(parseRanges(`bytes=1-${'9'.repeat(400)}`, 16)).toEqual([{ start: 1, length: 15 }]);
    expect(parseRanges('bytes=-99999999999999999', 16)).toEqual([{ start: 0, length: 16 }]);
    // Leading zeros are the same number.
    expect(parseRanges('bytes=00000000000000000002-00000000000000000003', 16)).toEqual([{ start: 2, length: 2 }]);
    expect(refusal(() => parseRanges('bytes=99999999999999999-', 16))).toMatchObject({ kind: 'OUT_OF_RANGE', field: 'Range' });
    expect(refusal(() => parseRanges('bytes=99999999999999999-99999999999999999', 16))).toMatchObject({ kind: 'OUT_OF_RANGE', field: 'Range' });
    expect(refusal(() => parseRanges('bytes=-99999999999999999', 0))).toMatchObject({ kind: 'OUT_OF_RANGE', field: 'Range' });
  });

  it('refuses a malformed range, or a last position before the first with 400', () => {
    // Positions of 2^53 or more are compared exactly too: the last before the first is 400, not a range past the end (416).
    const past = ['bytes=9007199254740993-9007199254740992', `bytes=1${'0'.repeat(30)}-${'9'.repeat(30)}`, 'bytes=0-1,99999999999999999-99999999999999998'];
    for (const header of ['bytes=', 'bytes=-', 'bytes=a-b', 'bytes=5-2', 'bytes=99999999999999999-3', 'BYTES=x', '=0-1', 'bytes 0-1', ...past]) {
      expect(refusal(() => parseRanges(header, 16)), header).toMatchObject({ kind: 'INVALID_ARGUMENT', field: 'Range', message: expect.stringContaining(header) });
    }
  });

  it('ignores empty list elements around the one range (RFC 9110 §5.6.1.2: a recipient MUST)', () => {
    for (const header of ['bytes=2-3,', 'bytes=, 2-3', 'bytes= ,2-3 , ,']) expect(parseRanges(header, 16), header).toEqual([{ start: 2, length: 2 }]);
    expect(parseRanges('bytes=,-4', 16)).toEqual([{ start: 12, length: 4 }]);
    for (const header of ['bytes=,', 'bytes=, ,']) expect(refusal(() => parseRanges(header, 16)), header).toMatchObject({ kind: 'INVALID_ARGUMENT', field: 'Range' });
    expect(parseRanges('bytes=0-1,,4-5', 16)).toEqual([{ start: 0, length: 2 }, { start: 4, length: 2 }]);
  });

  it('returns several ranges in the order listed, each clipped to the array', () => {
    expect(parseRanges('bytes=0-9,20-29', 100)).toEqual([{ start: 0, length: 10 }, { start: 20, length: 10 }]);
    expect(parseRanges('bytes=60-, -5 ,10-10,20-50', 100)).toEqual([{ start: 60, length: 40 }, { start: 95, length: 5 }, { start: 10, length: 1 }, { start: 20, length: 31 }]);
    expect(parseRanges('bytes=0-0,98-1000000', 100)).toEqual([{ start: 0, length: 1 }, { start: 98, length: 2 }]);
    expect(parseRanges(`Bytes=${'9'.repeat(30)}-,3-${'9'.repeat(30)}`, 16)).toEqual([{ start: 3, length: 13 }]);
  });

  it('drops the ranges that select no byte; none left is 416 naming the header and the size', () => {
    expect(parseRanges('bytes=100-,0-9,-0,200-300', 100)).toEqual([{ start: 0, length: 10 }]);
    expect(parseRanges('bytes=-0,95-,100-', 100)).toEqual([{ start: 95, length: 5 }]);
    for (const [header, size] of [['bytes=100-,-0', 100], ['bytes=0-0,-3', 0], ['bytes=5-,6-7', 5]] as const) {
      expect(refusal(() => parseRanges(header, size)), header).toMatchObject({ kind: 'OUT_OF_RANGE', field: 'Range', message: expect.stringContaining(`of ${header} selects a byte of the array (${size} bytes)`) });
    }
  });

  it('refuses the whole header with 400 when any of its ranges is malformed', () => {
    for (const header of ['bytes=0-1,x-2', 'bytes=0-1,5-2', 'bytes=100-,-', 'bytes=0-1,4-5 junk']) {
      expect(refusal(() => parseRanges(header, 16)), header).toMatchObject({ kind: 'INVALID_ARGUMENT', field: 'Range', message: expect.stringContaining(header) });
    }
  });

  it(`serves at most ${MAX_RANGES} ranges: more is 400 naming Range, the number and the cap, counting those that select no byte`, () => {
    const ranges = (count: number, first = 0) => Array.from({ length: count }, (_, index) => `${first + index}-${first + index}`).join(',');
    expect(parseRanges(`bytes=${ranges(MAX_RANGES)}`, 1000)).toHaveLength(MAX_RANGES);
    expect(refusal(() => parseRanges(`bytes=${ranges(MAX_RANGES + 1)}`, 1000))).toEqual({ kind: 'INVALID_ARGUMENT', field: 'Range', message: `Range: ${MAX_RANGES + 1} ranges listed, more than the ${MAX_RANGES} one request may ask for` });
    expect(refusal(() => parseRanges(`bytes=${ranges(MAX_RANGES, 5000)},0-0`, 1000)).message).toContain(`${MAX_RANGES + 1} ranges listed`);
    // Empty list elements are no ranges.
    expect(parseRanges(`bytes=${ranges(MAX_RANGES)}${','.repeat(100)}`, 1000)).toHaveLength(MAX_RANGES);
  });

  it('serves two ranges that overlap as listed, and refuses a byte in three or more with 400 naming it', () => {
    expect(parseRanges('bytes=0-9,5-14', 100)).toEqual([{ start: 0, length: 10 }, { start: 5, length: 10 }]);
    expect(parseRanges('bytes=0-,0-,', 100)).toEqual([{ start: 0, length: 100 }, { start: 0, length: 100 }]);
    // Three ranges that do not all share a byte: 0-9 and 20-29 each overlap 5-24 only.
    expect(parseRanges('bytes=0-9,20-29,5-24', 100)).toHaveLength(3);
    // Touching is not overlapping.
    expect(parseRanges('bytes=0-9,10-19,10-10,0-0', 100)).toHaveLength(4);
    expect(refusal(() => parseRanges('bytes=0-9,20-29,5-24,8-21', 100))).toEqual({
      kind: 'INVALID_ARGUMENT',
      field: 'Range',
      message: 'Range: byte 8 is in 3 of the ranges (0-9, 5-24, 8-21), more than the 2 overlapping ranges served; ask for it once or twice',
    });
    expect(refusal(() => parseRanges('bytes=-10,90-,95-95', 100)).message).toContain('byte 95 is in 3 of the ranges (90-99, 90-99, 95-95)');
  });

  it('ignores a range of another unit (RFC 9110 §14.2: an origin server MUST): the whole array', () => {
    for (const header of ['items=0-1', 'rows=3-', ' pages = 1-2,5-6']) expect(parseRanges(header, 16), header).toBeUndefined();
    expect(parseRanges('Bytes=2-3', 16)).toEqual([{ start: 2, length: 2 }]);
  });
});

describe('parseContentRange', () => {
  it('places a PUT body at first-last, which must match Content-Length and end inside the array', () => {
    expect(parseContentRange(undefined, 16, 16)).toEqual({ start: 0, length: 16 });
    expect(parseContentRange('bytes 4-7/*', 16, 4)).toEqual({ start: 4, length: 4 });
    expect(parseContentRange('bytes 4-7/16', 16, 4)).toEqual({ start: 4, length: 4 });
    expect(refusal(() => parseContentRange('bytes 14-17/*', 16, 4))).toMatchObject({ kind: 'OUT_OF_RANGE', field: 'Content-Range' });
    // The last byte of the array is position size - 1: a range ending there fits, one ending at size is one byte past.
    expect(parseContentRange('bytes 12-15/16', 16, 4)).toEqual({ start: 12, length: 4 });
    expect(refusal(() => parseContentRange('bytes 13-16/*', 16, 4))).toMatchObject({ kind: 'OUT_OF_RANGE', field: 'Content-Range' });
    expect(refusal(() => parseContentRange('bytes 16-16/*', 16, 1))).toMatchObject({ kind: 'OUT_OF_RANGE', field: 'Content-Range' });
    expect(refusal(() => parseContentRange(undefined, 16, 17))).toMatchObject({ kind: 'OUT_OF_RANGE', field: 'Content-Length' });
    expect(refusal(() => parseContentRange('bytes 4-7/15', 16, 4))).toMatchObject({ kind: 'INVALID_ARGUMENT', field: 'Content-Range' });
    expect(refusal(() => parseContentRange('bytes 4-7/*', 16, 5))).toMatchObject({ kind: 'INVALID_ARGUMENT', field: 'Content-Range' });
  });

  it('reads positions exactly, however many digits: past 2^53 is past the end (416), never rounded', () => {
    // 2^53 + 1 and 2^53 + 2 as Numbers round to 2^53 and 2^53 + 2: the length would look like 3, or 1.
    for (const header of ['bytes 9007199254740993-9007199254740994/*', 'bytes 18446744073709551616-18446744073709551617/*', `bytes ${'9'.repeat(40)}1-${'9'.repeat(40)}2/*`]) {
      expect(refusal(() => parseContentRange(header, 16, 2)), header).toMatchObject({ kind: 'OUT_OF_RANGE', field: 'Content-Range', message: expect.stringContaining(header) });
    }
    // A last position that passes 2^53 at a first position below it.
    expect(refusal(() => parseContentRange('bytes 9007199253692421-9007199254740996/*', 16, 2 ** 20))).toMatchObject({ kind: 'OUT_OF_RANGE', field: 'Content-Range' });
    // The length is checked exactly too: 2^53 + 1 .. 2^53 + 2 is 2 bytes, not 3.
    expect(refusal(() => parseContentRange('bytes 9007199254740993-9007199254740994/*', 16, 3))).toMatchObject({ kind: 'INVALID_ARGUMENT', field: 'Content-Range' });
    // Leading zeros are the same number.
    expect(parseContentRange('bytes 00000000000000000004-00000000000000000007/000000000000000000016', 16, 4)).toEqual({ start: 4, length: 4 });
  });
});
