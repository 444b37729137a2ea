/** CRC-32C (slicing-by-8) against published vectors, and the data plane's range headers. */
import { describe, expect, it } from 'vitest';
import { crc32c, crc32cHex, parseCrc32c } from '../../src/crc32c';
import { parseContentRange, parseRanges } from '../../src/dataplane/byte-ranges';

describe('crc32c', () => {
  it('matches the published check values', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
    expect(crc32c(Buffer.alloc(0))).toBe(0);
    // RFC 3720 (iSCSI) appendix B.4 vectors.
    expect(crc32c(Buffer.alloc(32, 0x00))).toBe(0x8a9136aa);
    expect(crc32c(Buffer.alloc(32, 0xff))).toBe(0x62a8ab43);
    expect(crc32c(Buffer.from(Array.from({ length: 32 }, (_, i) => i)))).toBe(0x46dd794e);
    expect(crc32c(Buffer.from(Array.from({ length: 32 }, (_, i) => 31 - i)))).toBe(0x113fdb5c);
  });

  it('is incremental and independent of alignment and chunking', () => {
    const data = Buffer.from(Array.from({ length: 10_007 }, (_, i) => (i * 131 + 7) & 0xff));
    const whole = crc32c(data);
    for (const cut of [1, 3, 8, 9, 4096, 10_000]) expect(crc32c(data.subarray(cut), crc32c(data.subarray(0, cut)))).toBe(whole);
    for (let shift = 0; shift < 8; shift++) {
      const unaligned = Buffer.alloc(data.length + shift);
      data.copy(unaligned, shift);
      expect(crc32c(unaligned.subarray(shift))).toBe(whole);
    }
  });

  it('parses hex and base64 header forms and refuses others', () => {
    expect(parseCrc32c('e3069283')).toBe(0xe3069283);
    expect(parseCrc32c('0xE3069283')).toBe(0xe3069283);
    expect(parseCrc32c(Buffer.from([0xe3, 0x06, 0x92, 0x83]).toString('base64'))).toBe(0xe3069283);
    expect(parseCrc32c('e306928')).toBeUndefined();
    expect(parseCrc32c('zz069283')).toBeUndefined();
    expect(crc32cHex(0x0000abcd)).toBe('0000abcd');
  });
});

describe('range headers', () => {
  it('parses Range forms against the size and clips the end', () => {
    expect(parseRanges(undefined, 100)).toBeUndefined();
    expect(parseRanges('bytes=0-9', 100)).toEqual([{ start: 0, length: 10 }]);
    expect(parseRanges('bytes=90-', 100)).toEqual([{ start: 90, length: 10 }]);
    expect(parseRanges('bytes=-5', 100)).toEqual([{ start: 95, length: 5 }]);
    expect(parseRanges('bytes=-500', 100)).toEqual([{ start: 0, length: 100 }]);
    expect(parseRanges('bytes=50-1000', 100)).toEqual([{ start: 50, length: 50 }]);
  });

  it('refuses bad and unsatisfiable ranges with the header named', () => {
    expect(() => parseRanges('bytes=100-', 100)).toThrow(expect.objectContaining({ kind: 'OUT_OF_RANGE', metadata: { field: 'Range' } }));
    expect(() => parseRanges('bytes=5-2', 100)).toThrow(expect.objectContaining({ kind: 'INVALID_ARGUMENT' }));
    expect(() => parseRanges('bytes=x-1', 100)).toThrow(/Range/);
  });

  it('parses Content-Range and checks it against the body and the array', () => {
    expect(parseContentRange(undefined, 100, 40)).toEqual({ start: 0, length: 40 });
    expect(parseContentRange('bytes 10-19/100', 100, 10)).toEqual({ start: 10, length: 10 });
    expect(parseContentRange('bytes 10-19/*', 100, 10)).toEqual({ start: 10, length: 10 });
    expect(() => parseContentRange(undefined, 100, 101)).toThrow(expect.objectContaining({ kind: 'OUT_OF_RANGE' }));
    expect(() => parseContentRange('bytes 95-104/*', 100, 10)).toThrow(expect.objectContaining({ kind: 'OUT_OF_RANGE' }));
    expect(() => parseContentRange('bytes 10-19/*', 100, 9)).toThrow(/Content-Length/);
    expect(() => parseContentRange('bytes 10-19/99', 100, 10)).toThrow(/size 100/);
  });
});
