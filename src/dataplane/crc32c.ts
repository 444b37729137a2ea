/**
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of iSCSI, ext4, gRPC-adjacent
 * storage APIs and Google Cloud Storage's `x-goog-hash: crc32c=`. Table-driven, slicing-by-8: eight
 * 256-entry tables let the loop consume 8 bytes per step. Incremental: pass the previous value to
 * continue a checksum over the next chunk (crc32c(b, crc32c(a)) === crc32c(a ‖ b)).
 */

const POLYNOMIAL = 0x82f63b78;

const TABLES: Uint32Array[] = (() => {
  const tables = Array.from({ length: 8 }, () => new Uint32Array(256));
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLYNOMIAL : c >>> 1;
    tables[0][n] = c >>> 0;
  }
  for (let n = 0; n < 256; n++) {
    let c = tables[0][n];
    for (let t = 1; t < 8; t++) {
      c = tables[0][c & 0xff] ^ (c >>> 8);
      tables[t][n] = c >>> 0;
    }
  }
  return tables;
})();

/** The CRC-32C of `data`, continuing from `previous` (the CRC of the bytes before it; 0 to start). Unsigned 32-bit. */
export function crc32c(data: Uint8Array, previous = 0): number {
  const [t0, t1, t2, t3, t4, t5, t6, t7] = TABLES;
  let crc = ~previous >>> 0;
  let i = 0;
  const length = data.length;
  // Bytes up to the first 4-byte-aligned address one at a time, then 8 at a time as two aligned
  // little-endian words (every platform Node supports is little-endian), then the tail.
  const head = Math.min(length, (4 - (data.byteOffset & 3)) & 3);
  while (i < head) crc = t0[(crc ^ data[i++]) & 0xff] ^ (crc >>> 8);
  const words = (length - i) >>> 3;
  if (words > 0) {
    const view = new Uint32Array(data.buffer, data.byteOffset + i, words * 2);
    for (let w = 0; w < view.length; w += 2) {
      const lo = view[w] ^ crc;
      const hi = view[w + 1];
      crc =
        t7[lo & 0xff] ^
        t6[(lo >>> 8) & 0xff] ^
        t5[(lo >>> 16) & 0xff] ^
        t4[lo >>> 24] ^
        t3[hi & 0xff] ^
        t2[(hi >>> 8) & 0xff] ^
        t1[(hi >>> 16) & 0xff] ^
        t0[hi >>> 24];
    }
    i += words * 8;
  }
  while (i < length) crc = t0[(crc ^ data[i++]) & 0xff] ^ (crc >>> 8);
  return ~crc >>> 0;
}

/** The header form: 8 lowercase hex digits (e.g. "e3069283"). */
export function crc32cHex(value: number): string {
  return (value >>> 0).toString(16).padStart(8, '0');
}

/**
 * Parses a checksum header value: 8 hex digits ("e3069283", optionally "0x"-prefixed) or the base64
 * of the 4 big-endian bytes ("4waSgw==", the form of Google Cloud Storage's x-goog-hash). Undefined
 * when it is neither.
 */
export function parseCrc32c(text: string): number | undefined {
  const value = text.trim();
  const hex = /^(?:0x)?([0-9a-fA-F]{8})$/.exec(value);
  if (hex) return parseInt(hex[1], 16) >>> 0;
  if (/^[A-Za-z0-9+/]{6}==$/.test(value)) {
    const bytes = Buffer.from(value, 'base64');
    if (bytes.length === 4) return bytes.readUInt32BE(0);
  }
  return undefined;
}
