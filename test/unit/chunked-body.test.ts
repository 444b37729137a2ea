/** ChunkedBodyDecoder: RFC 9112 §7.1 chunked framing decoded however reads cut it, data handed on as views, malformed framing named. */
import { describe, expect, it } from 'vitest';
import { ChunkedBodyDecoder, MAX_CHUNK_LINE_BYTES, MAX_TRAILER_BYTES } from '../../src/dataplane/chunked-body';
import { TensormemError } from '../../src/errors';
import { rng } from '../helpers/rng';

/** Feeds `reads` in order; returns the data pieces (each checked to be a view of its read), whether it is done, and where the last read stopped. */
function decodeAll(reads: Buffer[], decoder = new ChunkedBodyDecoder()): { data: Buffer; pieces: number; done: boolean; end: number } {
  const pieces: Buffer[] = [];
  let end = 0;
  for (const read of reads) {
    let at = 0;
    while (at < read.byteLength && !decoder.done) {
      const step = decoder.decode(read, at);
      expect(step.end).toBeGreaterThan(at);
      if (step.data) {
        // A view of the read: same memory, no copy.
        expect(step.data.buffer).toBe(read.buffer);
        expect(step.data.byteOffset).toBe(read.byteOffset + step.end - step.data.byteLength);
        pieces.push(Buffer.from(step.data));
      }
      at = step.end;
    }
    end = at;
  }
  return { data: Buffer.concat(pieces), pieces: pieces.length, done: decoder.done, end };
}

function refusalOf(reads: Buffer[]): TensormemError {
  try {
    decodeAll(reads);
  } catch (error) {
    return error as TensormemError;
  }
  throw new Error('decoded without a refusal');
}

const framed = Buffer.from('5;ext=1\r\nhello\r\n1A;q="a;\\"b"\r\nabcdefghijklmnopqrstuvwxyz\r\n0;last\r\nX-Checksum: 1\r\nX-Other:2\r\n\r\n');
const expected = 'helloabcdefghijklmnopqrstuvwxyz';

describe('ChunkedBodyDecoder', () => {
  it('decodes a body in one read: extensions ignored, trailers dropped, stopping right after the blank line', () => {
    const next = Buffer.from('GET / HTTP/1.1\r\n');
    const result = decodeAll([Buffer.concat([framed, next])]);
    expect(result.data.toString('latin1')).toBe(expected);
    expect(result.done).toBe(true);
    expect(result.end).toBe(framed.byteLength);
  });

  it('decodes the same body cut into two reads at every byte, and one byte a read', () => {
    for (let cut = 1; cut < framed.byteLength; cut++) {
      const result = decodeAll([Buffer.from(framed.subarray(0, cut)), Buffer.from(framed.subarray(cut))]);
      expect(result.data.toString('latin1'), `cut at ${cut}`).toBe(expected);
      expect(result.done, `cut at ${cut}`).toBe(true);
    }
    const bytewise = decodeAll([...framed].map((byte) => Buffer.from([byte])));
    expect(bytewise.data.toString('latin1')).toBe(expected);
    expect(bytewise.done).toBe(true);
  });

  it('hands a chunk larger than a read on in pieces, one per read', () => {
    const data = Buffer.alloc(10_000, 7);
    const body = Buffer.concat([Buffer.from('2710\r\n'), data, Buffer.from('\r\n0\r\n\r\n')]);
    const reads = [0, 3000, 6000, 9000].map((at, index, all) => Buffer.from(body.subarray(at, all[index + 1] ?? body.byteLength)));
    const result = decodeAll(reads);
    expect(result.data.equals(data)).toBe(true);
    expect(result.pieces).toBe(4);
  });

  it('keeps the trailer fields it is told to (by lowercase name, values without OWS, several lines joined by ", "), however the reads cut them, and drops the others', () => {
    const body = Buffer.from('3\r\nabc\r\n0\r\nX-Tensormem-Crc32c: \t364b3fb7 \r\nX-Other: dropped\r\nx-tensormem-crc32c:Nks/tw==\r\n\r\n');
    for (let cut = 1; cut < body.byteLength; cut++) {
      const decoder = new ChunkedBodyDecoder(new Set(['x-tensormem-crc32c']));
      const result = decodeAll([Buffer.from(body.subarray(0, cut)), Buffer.from(body.subarray(cut))], decoder);
      expect(result.done, `cut at ${cut}`).toBe(true);
      expect({ ...decoder.trailers }, `cut at ${cut}`).toEqual({ 'x-tensormem-crc32c': '364b3fb7, Nks/tw==' });
    }
    // Told nothing, it keeps nothing.
    const none = new ChunkedBodyDecoder();
    decodeAll([body], none);
    expect({ ...none.trailers }).toEqual({});
  });

  it('a zero-length body is done after its last chunk and the blank line; leading zeros are the same size', () => {
    expect(decodeAll([Buffer.from('0\r\n\r\n')])).toMatchObject({ pieces: 0, done: true });
    expect(decodeAll([Buffer.from('0000\r\n\r\n')])).toMatchObject({ pieces: 0, done: true });
    expect(decodeAll([Buffer.from('0003\r\nabc\r\n0\r\n\r\n')]).data.toString()).toBe('abc');
    expect(decodeAll([Buffer.from('3\r\nabc\r\n0\r\n')]).done).toBe(false);
  });

  it('refuses malformed framing naming the field and the value seen, and keeps refusing', () => {
    const cases: Array<[string, 'Transfer-Encoding' | 'body', string]> = [
      ['zz\r\n', 'Transfer-Encoding', '"zz"'],
      ['\r\n', 'Transfer-Encoding', '""'],
      ['0x4\r\n', 'Transfer-Encoding', '"0x4"'],
      ['+4\r\n', 'Transfer-Encoding', '"+4"'],
      ['4 4\r\n', 'Transfer-Encoding', '"4 4"'],
      ['4\n', 'Transfer-Encoding', '"4\\n"'],
      ['4;a\rb\r\n', 'Transfer-Encoding', '4;a'],
      ['20000000000000\r\n', 'Transfer-Encoding', '"20000000000000"'],
      ['ffffffffffffffffffff\r\n', 'Transfer-Encoding', '"ffffffffffffffffffff"'],
      ['4\r\nabcdX\r\n', 'body', '"X'],
      ['4\r\nabcd\rX', 'body', '"\\rX"'],
      ['4\r\nabcd\r\n0\r\nno colon\r\n\r\n', 'Transfer-Encoding', '"no colon"'],
      ['4\r\nabcd\r\n0\r\nX-A: 1\n\r\n', 'Transfer-Encoding', '"X-A: 1\\n"'],
      // No whitespace in a size line, extensions ;name[=token|quoted-string] only (llhttp refuses the rest).
      ['4 \r\n', 'Transfer-Encoding', '"4 "'],
      ['4\t;a\r\n', 'Transfer-Encoding', '"4\\t;a"'],
      ['4 ;a\r\n', 'Transfer-Encoding', '"4 ;a"'],
      ['4;\r\n', 'Transfer-Encoding', '"4;"'],
      ['4;a=b c\r\n', 'Transfer-Encoding', '"4;a=b c"'],
      ['4;a="x\r\n', 'Transfer-Encoding', '"4;a=\\"x"'],
      ['4;a="\x01"\r\n', 'Transfer-Encoding', '"4;a=\\"\\u0001\\""'],
      // Framing fields are not trailers (RFC 9110 §6.5.1).
      ['4\r\nabcd\r\n0\r\nContent-Length: 4\r\n\r\n', 'Transfer-Encoding', '"Content-Length: 4"'],
      ['4\r\nabcd\r\n0\r\ntransfer-encoding: chunked\r\n\r\n', 'Transfer-Encoding', '"transfer-encoding: chunked"'],
    ];
    for (const [text, field, seen] of cases) {
      const refusal = refusalOf([Buffer.from(text)]);
      expect(refusal, text).toBeInstanceOf(TensormemError);
      expect([refusal.kind, refusal.reason, refusal.metadata.field], text).toEqual(['INVALID_ARGUMENT', 'MALFORMED_REQUEST', field]);
      expect(refusal.message, text).toContain(seen);
    }
    // 2^53 - 1 is a size (no array is that large, but the framing is good); refused once it passes 2^53 - 1.
    expect(() => decodeAll([Buffer.from('1fffffffffffff\r\nab')])).not.toThrow();
    const decoder = new ChunkedBodyDecoder();
    expect(() => decoder.decode(Buffer.from('q\r\n'), 0)).toThrow(/chunk-size/);
    expect(() => decoder.decode(Buffer.from('4\r\nabcd\r\n'), 0)).toThrow(/chunk-size/);
  });

  it('bounds a size line (extensions included) and the trailer section, refusing once past the bound, before its end arrives', () => {
    const longExtension = `4;${'e'.repeat(MAX_CHUNK_LINE_BYTES)}`;
    const refusal = refusalOf([Buffer.from(longExtension.slice(0, 1000)), Buffer.from(longExtension.slice(1000))]);
    expect(refusal.metadata.field).toBe('Transfer-Encoding');
    expect(refusal.message).toContain(String(MAX_CHUNK_LINE_BYTES));
    // Just under the bound is a size line like any other.
    const under = `4;${'e'.repeat(MAX_CHUNK_LINE_BYTES - 6)}\r\nabcd\r\n0\r\n\r\n`;
    expect(decodeAll([Buffer.from(under)]).data.toString()).toBe('abcd');
    const trailers = `0\r\n${'X-Pad: aaaaaaaaaaaaaaaaaaaaaaaa\r\n'.repeat(Math.ceil(MAX_TRAILER_BYTES / 32) + 1)}`;
    const trailerRefusal = refusalOf([Buffer.from(trailers)]);
    expect(trailerRefusal.metadata.field).toBe('Transfer-Encoding');
    expect(trailerRefusal.message).toContain(String(MAX_TRAILER_BYTES));
  });
});

/** What a decoder makes of `reads`: the data and where in the stream it stopped, or the field its refusal names. */
function outcomeOf(reads: Buffer[]): string {
  try {
    const result = decodeAll(reads);
    const before = reads.slice(0, -1).reduce((sum, read) => sum + read.byteLength, 0);
    return `data ${result.data.toString('hex')} done ${result.done} end ${before + result.end}`;
  } catch (error) {
    if (!(error instanceof TensormemError)) throw error;
    return `refused ${error.reason} ${error.metadata.field}`;
  }
}

/** `bytes` cut at `cuts` random places (each read a copy of its own, as a socket's reads are). */
function randomReads(random: () => number, bytes: Buffer, cuts: number): Buffer[] {
  const at = Array.from({ length: cuts }, () => Math.floor(random() * bytes.byteLength)).sort((a, b) => a - b);
  return [0, ...at].map((from, index, all) => Buffer.from(bytes.subarray(from, all[index + 1] ?? bytes.byteLength))).filter((read) => read.byteLength > 0);
}

/** A reference encoder (RFC 9112 §7.1): random chunk sizes, hex in either case with leading zeros, valid extensions and trailers. */
function encodeChunked(random: () => number, data: Buffer): Buffer {
  const extensions = ['', '', '', ';a', ';name=value', ';q="a;b \\"c\\""', ';x=1;y', ';e=""'];
  const size = (n: number) => `${'0'.repeat(Math.floor(random() * 3))}${random() < 0.5 ? n.toString(16) : n.toString(16).toUpperCase()}${extensions[Math.floor(random() * extensions.length)]}\r\n`;
  const parts: Buffer[] = [];
  for (let at = 0; at < data.byteLength; ) {
    const length = Math.min(data.byteLength - at, 1 + Math.floor(random() * (random() < 0.2 ? 2000 : 40)));
    parts.push(Buffer.from(size(length), 'latin1'), data.subarray(at, at + length), Buffer.from('\r\n'));
    at += length;
  }
  const trailers = ['', 'X-Checksum: 1\r\n', 'X-A:1\r\nX-B: two words\t\r\n'][Math.floor(random() * 3)];
  parts.push(Buffer.from(`${size(0)}${trailers}\r\n`, 'latin1'));
  return Buffer.concat(parts);
}

describe('ChunkedBodyDecoder against a reference encoder (seeded; CHUNKED_FUZZ_BODIES=N for more)', () => {
  const bodies = Number(process.env.CHUNKED_FUZZ_BODIES ?? 400);

  it(`decodes ${bodies} encoded bodies to their data, however the reads cut them, stopping right after the framing`, () => {
    for (let seed = 1; seed <= bodies; seed++) {
      const random = rng(seed);
      const data = Buffer.from(Array.from({ length: Math.floor(random() * (random() < 0.1 ? 20_000 : 300)) }, () => Math.floor(random() * 256)));
      const framing = encodeChunked(random, data);
      const stream = Buffer.concat([framing, Buffer.from('GET /next HTTP/1.1\r\n')]);
      const expected = `data ${data.toString('hex')} done true end ${framing.byteLength}`;
      for (let split = 0; split < 6; split++) {
        const reads = randomReads(random, stream, split === 0 ? 0 : 1 + Math.floor(random() * 12));
        // decodeAll stops at the end of the framing: a read wholly after it is not looked at.
        const startOfLast = () => reads.slice(0, -1).reduce((sum, read) => sum + read.byteLength, 0);
        while (reads.length > 1 && startOfLast() >= framing.byteLength) reads.pop();
        expect(outcomeOf(reads), `seed ${seed}, reads of ${reads.map((read) => read.byteLength).join('+')}`).toBe(expected);
      }
    }
  });

  it('gives every split of a mutated framing the same answer: the same data, or a refusal naming the same field', () => {
    const noise = [0x0d, 0x0a, 0x20, 0x09, 0x3b, 0x3d, 0x22, 0x30, 0x61, 0x00, 0x7f, 0xff];
    for (let seed = 1; seed <= bodies; seed++) {
      const random = rng(seed + 1_000_000);
      const data = Buffer.from(Array.from({ length: Math.floor(random() * 60) }, () => 0x41 + Math.floor(random() * 26)));
      const framing = Buffer.from(encodeChunked(random, data));
      framing[Math.floor(random() * framing.byteLength)] = noise[Math.floor(random() * noise.length)];
      const whole = outcomeOf([framing]);
      for (let split = 0; split < 4; split++) {
        const reads = randomReads(random, framing, 1 + Math.floor(random() * 6));
        expect(outcomeOf(reads), `seed ${seed}: ${JSON.stringify(framing.toString('latin1'))} in reads of ${reads.map((read) => read.byteLength).join('+')}`).toBe(whole);
      }
      expect(outcomeOf([...framing].map((byte) => Buffer.from([byte]))), `seed ${seed} a byte a read`).toBe(whole);
    }
  });
});
