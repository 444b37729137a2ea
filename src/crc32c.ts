/**
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of iSCSI, ext4, gRPC-adjacent
 * storage APIs and Google Cloud Storage's `x-goog-hash: crc32c=`. Incremental: pass the previous value
 * to continue a checksum over the next chunk (crc32c(b, crc32c(a)) === crc32c(a ‖ b)).
 *
 * crc32c is the native addon's (native/src/crc32c.cc: the CPU's crc32 instruction, SSE4.2 or ARMv8
 * CRC32, three streams interleaved, some 10 GB/s; a table where the CPU has neither) whenever the addon
 * loads, which it always does in the daemon. Where it does not (the typed client or tensormemctl in a
 * copy whose addon was not built), and with TENSORMEM_CRC32C=js, it is crc32cJs below: table-driven,
 * slicing-by-8 (eight 256-entry tables let the loop consume 8 bytes per step), under 1 GB/s.
 * TENSORMEM_CRC32C=table takes the addon's table path (to compare); where the addon does not load it is
 * crc32cJs, as unset: a client library must not fail its checked writes for want of an addon it does not
 * need (the daemon cannot start without the addon anyway, so there table is always the addon's).
 */
import { TensormemError } from './errors';
import { loadAddon } from './native/addon';

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

/** The JavaScript CRC-32C of `data`, continuing from `previous` (the CRC of the bytes before it; 0 to start). Unsigned 32-bit. */
export function crc32cJs(data: Uint8Array, previous = 0): number {
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

/** Which code computes crc32c: the addon's instruction path ("sse4.2", "armv8-crc"), its table ("table"), or crc32cJs ("js"). */
export type Crc32cImplementation = 'sse4.2' | 'armv8-crc' | 'table' | 'js';

export interface Crc32cChoice {
  implementation: Crc32cImplementation;
  compute: (data: Uint8Array, previous?: number) => number;
}

/** The values TENSORMEM_CRC32C takes: unset or "auto" (the addon's best path, else JavaScript), "js", "table". */
const CRC32C_MODES = ['auto', 'js', 'table'] as const;

/** The addon's two CRC functions, as far as choosing one needs them (an older build has neither). */
interface Crc32cAddon {
  crc32c?: (data: Uint8Array, previous?: number, portable?: boolean) => number;
  crc32cImplementation?: () => string;
}

/**
 * Chooses crc32c's implementation for `mode` (TENSORMEM_CRC32C): the addon's when `load` gives one that
 * has crc32c, else crc32cJs ("table" too: its table is only another way to the same values). Throws for
 * a value TENSORMEM_CRC32C does not take, naming the variable and the value.
 */
export function chooseCrc32c(mode: string | undefined, load: () => Crc32cAddon): Crc32cChoice {
  const wanted = mode === undefined || mode === '' ? 'auto' : mode.toLowerCase();
  if (!(CRC32C_MODES as readonly string[]).includes(wanted)) {
    throw new Error(`TENSORMEM_CRC32C must be one of ${CRC32C_MODES.join(', ')} (or unset), not ${JSON.stringify(mode)}`);
  }
  if (wanted === 'js') return { implementation: 'js', compute: crc32cJs };
  let addon: Crc32cAddon | undefined;
  try {
    addon = load();
  } catch {
    // Not built (the typed client or tensormemctl in such a copy), or built before it had crc32c.
  }
  const native = addon?.crc32c;
  if (native === undefined || addon?.crc32cImplementation === undefined) return { implementation: 'js', compute: crc32cJs };
  if (wanted === 'table') return { implementation: 'table', compute: (data, previous = 0) => native(data, previous, true) };
  return { implementation: addon.crc32cImplementation() as Crc32cImplementation, compute: native };
}

let chosen: Crc32cChoice | undefined;

function choice(): Crc32cChoice {
  chosen ??= chooseCrc32c(process.env.TENSORMEM_CRC32C, loadAddon);
  return chosen;
}

/**
 * The CRC-32C of `data`, continuing from `previous` (the CRC of the bytes before it; 0 to start).
 * Unsigned 32-bit. Native when the addon loads (read in place, never copied), else crc32cJs.
 */
export function crc32c(data: Uint8Array, previous = 0): number {
  return choice().compute(data, previous);
}

/** Which implementation crc32c uses in this process (the addon is loaded, if it can be, to tell). */
export function crc32cImplementation(): Crc32cImplementation {
  return choice().implementation;
}

/** The header form: 8 lowercase hex digits (e.g. "e3069283"). */
export function crc32cHex(value: number): string {
  return (value >>> 0).toString(16).padStart(8, '0');
}

/**
 * The refusal of `bytes` bytes received at `offset` whose CRC-32C, `received`, is not `expected`, the one
 * sent with them in `field` (the data plane's X-Tensormem-Crc32c, WriteArrayHeader.crc32c): INVALID_ARGUMENT,
 * reason CHECKSUM_MISMATCH, with both CRCs, the offset and the bytes in its metadata. The bytes were written as
 * they arrived (`unstaged` says why none were held back), so the message says that the range holds them.
 */
export function checksumMismatch(field: string, offset: number, bytes: number, expected: number, received: number, unstaged: string): TensormemError {
  return new TensormemError(
    'INVALID_ARGUMENT',
    'CHECKSUM_MISMATCH',
    `${field}: the ${bytes} bytes received at offset ${offset} have CRC-32C ${crc32cHex(received)}, not ${crc32cHex(expected)}; they were written as they arrived (${unstaged}), so that range holds them: rewrite it`,
    { field, expected_crc32c: crc32cHex(expected), received_crc32c: crc32cHex(received), offset: String(offset), bytes: String(bytes) },
  );
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
