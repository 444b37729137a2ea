/**
 * The protobuf wire format, for the messages encoded or decoded by hand (snapshot-encoder.ts,
 * plain-message-codecs.ts) instead of through protobufjs's generated message objects.
 */

/** Grows a Buffer; protobuf varints, tags, strings. Fields at their proto3 default are left out. */
export class ProtoWriter {
  buffer: Buffer;
  length = 0;
  /** Writes into `initial` (grown into a new Buffer when full), or a new Buffer of that many bytes. */
  constructor(initial: number | Buffer = 1 << 16) {
    this.buffer = typeof initial === 'number' ? Buffer.allocUnsafe(initial) : initial;
  }
  private room(bytes: number): void {
    if (this.length + bytes <= this.buffer.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buffer.length * 2, this.length + bytes));
    this.buffer.copy(next, 0, 0, this.length);
    this.buffer = next;
  }
  varint(value: number): void {
    this.room(10);
    this.length = writeVarintAt(this.buffer, this.length, value);
  }
  tag(field: number, wireType: 0 | 2): void {
    this.varint(field * 8 + wireType);
  }
  /** A uint64/uint32/bool/enum field of a value from 0 to 2^53, left out at zero (proto3). */
  number(field: number, value: number): void {
    if (value === 0) return;
    this.tag(field, 0);
    this.varint(value);
  }
  /** A string field, left out when empty (proto3). */
  string(field: number, value: string): void {
    if (value === '') return;
    const bytes = Buffer.byteLength(value);
    this.tag(field, 2);
    this.varint(bytes);
    this.room(bytes);
    this.length += this.buffer.write(value, this.length);
  }
  /** A packed repeated varint field of values from 0 to 2^53, left out when empty. */
  packed(field: number, values: readonly number[]): void {
    if (values.length === 0) return;
    let bytes = 0;
    for (const value of values) bytes += varintLength(value);
    this.tag(field, 2);
    this.varint(bytes);
    for (const value of values) this.varint(value);
  }
  bytes(field: number, value: Buffer): void {
    this.tag(field, 2);
    this.varint(value.length);
    this.room(value.length);
    this.length += value.copy(this.buffer, this.length);
  }
  take(): Buffer {
    return this.buffer.subarray(0, this.length);
  }
}

/** How many bytes the varint of `value` (0 to 2^53) takes. */
export function varintLength(value: number): number {
  let bytes = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 0x80);
    bytes++;
  }
  return bytes;
}

/** The varint wire type and the length-delimited one, as tags carry them in their low three bits. */
/** Writes a varint of 0 to 2^53 (offsets, sizes: no bitwise operators above 2^31) at `at`; returns the position after it. */
export function writeVarintAt(buffer: Buffer, at: number, value: number): number {
  while (value >= 0x80) {
    buffer[at++] = (value % 0x80) | 0x80;
    value = Math.floor(value / 0x80);
  }
  buffer[at++] = value;
  return at;
}

export const VARINT = 0;
export const LENGTH_DELIMITED = 2;

/**
 * Reads one message's fields for a decoder that takes only the usual case: every read answers -1 (or
 * false) where the bytes are anything else (a 64-bit varint over 7 bytes, i.e. at or above 2^49, or a
 * negative int64; a 32-bit one over 5 bytes or at or above 2^32; a length past the end; a group), and
 * the decoder then leaves the message to protobufjs, which decides what such bytes mean. So the answer
 * is always protobufjs's, only the common case is faster.
 */
export class ProtoReader {
  pos: number;
  constructor(
    readonly buffer: Buffer,
    start = 0,
    readonly end = buffer.length,
  ) {
    this.pos = start;
  }
  /** A varint from 0 to 2^49 - 1 (up to 7 bytes), or -1. */
  varint(): number {
    const buffer = this.buffer;
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 7 && this.pos < this.end; i++) {
      const byte = buffer[this.pos++];
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) return value;
      scale *= 0x80;
    }
    return -1;
  }
  /**
   * A varint read as protobufjs's `uint32()` reads tags, lengths and 32-bit fields, from 0 to 2^32 - 1
   * in up to 5 bytes, or -1: from its sixth byte on, protobufjs skips to the tenth whatever is there.
   */
  uint32(): number {
    const start = this.pos;
    const value = this.varint();
    return value >= 0 && value <= 0xffffffff && this.pos - start <= 5 ? value : -1;
  }
  /** A tag (field number and wire type), or -1. */
  tag(): number {
    return this.uint32();
  }
  /** A length-delimited field's length, or -1 where it runs past the end. */
  length(): number {
    const length = this.uint32();
    return length >= 0 && length <= this.end - this.pos ? length : -1;
  }
  /** Skips a field of wire type varint, fixed64, length-delimited or fixed32; false for groups or past the end. */
  skip(wireType: number): boolean {
    if (wireType === 0) return this.varint() >= 0;
    if (wireType === 2) {
      const length = this.length();
      if (length < 0) return false;
      this.pos += length;
      return true;
    }
    const bytes = wireType === 1 ? 8 : wireType === 5 ? 4 : -1;
    if (bytes < 0 || this.end - this.pos < bytes) return false;
    this.pos += bytes;
    return true;
  }
}
