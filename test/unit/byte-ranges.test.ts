/**
 * The data plane's range headers (src/dataplane/byte-ranges.ts): what a GET's `Range` selects of an
 * array, and when it selects nothing (416) or is malformed (400).
 */
import { describe, expect, it } from 'vitest';
import { TensormemError } from '../../src/errors';
import { parseContentRange, parseRange } from '../../src/dataplane/byte-ranges';

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

describe('parseRange', () => {
  it('refuses any suffix of a 0-byte array with 416, as it selects no byte', () => {
    for (const header of ['bytes=-5', 'bytes=-1', 'bytes=-0', 'bytes=0-', 'bytes=0-0']) {
      expect(refusal(() => parseRange(header, 0)), header).toMatchObject({ kind: 'OUT_OF_RANGE', field: 'Range', message: expect.stringContaining(header) });
    }
    expect(refusal(() => parseRange('bytes=-0', 16))).toMatchObject({ kind: 'OUT_OF_RANGE', field: 'Range' });
  });

  it('clips a last position or suffix length of any number of digits to the array; a first position that large is 416', () => {
    expect(parseRange('bytes=0-99999999999999999', 16)).toEqual({ start: 0, length: 16 });
    expect(parseRange('bytes=5-9007199254740992', 16)).toEqual({ start: 5, length: 11 });
    expect(parseRange(`bytes=1-${'9'.repeat(400)}`, 16)).toEqual({ start: 1, length: 15 });
    expect(parseRange('bytes=-99999999999999999', 16)).toEqual({ start: 0, length: 16 });
    // Leading zeros are the same number.
    expect(parseRange('bytes=00000000000000000002-00000000000000000003', 16)).toEqual({ start: 2, length: 2 });
    expect(refusal(() => parseRange('bytes=99999999999999999-', 16))).toMatchObject({ kind: 'OUT_OF_RANGE', field: 'Range' });
    expect(refusal(() => parseRange('bytes=99999999999999999-99999999999999999', 16))).toMatchObject({ kind: 'OUT_OF_RANGE', field: 'Range' });
    expect(refusal(() => parseRange('bytes=-99999999999999999', 0))).toMatchObject({ kind: 'OUT_OF_RANGE', field: 'Range' });
  });

  it('refuses a malformed range, several ranges, or a last position before the first with 400', () => {
    for (const header of ['bytes=', 'bytes=-', 'bytes=a-b', 'bytes=0-1,4-5', 'bytes=5-2', 'bytes=99999999999999999-3', 'BYTES=x', '=0-1', 'bytes 0-1']) {
      expect(refusal(() => parseRange(header, 16)), header).toMatchObject({ kind: 'INVALID_ARGUMENT', field: 'Range', message: expect.stringContaining(header) });
    }
  });

  it('ignores empty list elements around the one range (RFC 9110 §5.6.1.2: a recipient MUST)', () => {
    for (const header of ['bytes=2-3,', 'bytes=, 2-3', 'bytes= ,2-3 , ,']) expect(parseRange(header, 16), header).toEqual({ start: 2, length: 2 });
    expect(parseRange('bytes=,-4', 16)).toEqual({ start: 12, length: 4 });
    for (const header of ['bytes=,', 'bytes=, ,']) expect(refusal(() => parseRange(header, 16)), header).toMatchObject({ kind: 'INVALID_ARGUMENT', field: 'Range' });
    expect(refusal(() => parseRange('bytes=0-1,,4-5', 16)).message).toContain('multiple ranges');
  });

  it('ignores a range of another unit (RFC 9110 §14.2: an origin server MUST): the whole array', () => {
    for (const header of ['items=0-1', 'rows=3-', ' pages = 1-2,5-6']) expect(parseRange(header, 16), header).toBeUndefined();
    expect(parseRange('Bytes=2-3', 16)).toEqual({ start: 2, length: 2 });
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
