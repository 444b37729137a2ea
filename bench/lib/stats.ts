/** Order statistics over samples (nearest-rank percentiles, no interpolation). */

export function sorted(samples: ArrayLike<number>): Float64Array {
  return Float64Array.from(samples as ArrayLike<number>).sort();
}

/** Nearest-rank percentile, p in [0, 100], of an already sorted array. */
export function percentileOfSorted(values: Float64Array, p: number): number {
  if (values.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * values.length);
  return values[Math.min(values.length - 1, Math.max(0, rank - 1))];
}

export function median(samples: ArrayLike<number>): number {
  const values = sorted(samples);
  if (values.length === 0) return NaN;
  const mid = values.length >> 1;
  return values.length % 2 === 1 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
}

export function percentile(samples: ArrayLike<number>, p: number): number {
  return percentileOfSorted(sorted(samples), p);
}

export interface Summary {
  n: number;
  median: number;
  p99: number;
  min: number;
  max: number;
}

export function summarize(samples: ArrayLike<number>): Summary {
  const values = sorted(samples);
  return { n: values.length, median: median(values), p99: percentileOfSorted(values, 99), min: values[0], max: values[values.length - 1] };
}

/** A small deterministic PRNG (xorshift32), so runs draw the same sequence. */
export function xorshift32(seed: number): () => number {
  let x = seed >>> 0 || 0x9e3779b9;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x100000000;
  };
}

export function nowNs(): bigint {
  return process.hrtime.bigint();
}

/** Elapsed microseconds since `start` (a nowNs() value). */
export function usSince(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1000;
}
