/** Byte sizes: IEC formatting for messages. Sizes are integers in bytes, never floats. */

const IEC_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** "1073741824 bytes (1.00 GiB)"-style IEC rendering with two decimals, e.g. formatIec(1536) === "1.50 KiB". */
export function formatIec(bytes: number | bigint): string {
  let value = Number(bytes);
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < IEC_UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(2)} ${IEC_UNITS[unit]}`;
}

/** "1073741824 bytes (1.00 GiB)": the exact count and the readable one, as every memory error says them. */
export function formatBytes(bytes: number | bigint): string {
  return `${bytes} bytes (${formatIec(bytes)})`;
}

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;
