/**
 * Size and duration syntax (DESIGN.md §3). Sizes follow the seed and JavaCPP: K, M, G, T are powers
 * of 1024 ("8G" = 8 GiB), KiB/MiB/GiB/TiB are accepted too, an optional trailing "B" is allowed
 * ("8GB" = 8 GiB, as JavaCPP's parseBytes), a bare number is bytes, and "%" is a share of a base
 * (physical RAM, or VRAM for device sizes) known only once the backend is up.
 * Durations take ms, s, m, h; a bare number is seconds.
 */
import { invalidArgument } from '../errors';

export type SizeSpec = { kind: 'bytes'; bytes: number } | { kind: 'percent'; percent: number };

const SIZE_MULTIPLIERS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1024 ** 4,
  tib: 1024 ** 4,
};

/** Parses "8G", "512MiB", "1.5g", "1048576", "80%". `field` names the flag in the error. */
export function parseSize(text: string, field: string, allowPercent = true): SizeSpec {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z%]*)\s*$/.exec(text);
  const expected = allowPercent ? 'a size like 8G, 512MiB, 1048576 or 80%' : 'a size like 8G, 512MiB or 1048576';
  if (!match) throw invalidArgument(field, expected, text);
  const value = Number(match[1]);
  const unit = match[2].toLowerCase();
  if (unit === '%') {
    if (!allowPercent || value > 100) throw invalidArgument(field, allowPercent ? 'a percentage between 0% and 100%' : expected, text);
    return { kind: 'percent', percent: value };
  }
  const multiplier = SIZE_MULTIPLIERS[unit];
  if (multiplier === undefined) throw invalidArgument(field, expected, text);
  const bytes = Math.floor(value * multiplier);
  if (!Number.isSafeInteger(bytes)) throw invalidArgument(field, 'a size below 8 PiB', text);
  // 0 means "no cap" for several sizes (--maxphysicalbytes, --mmap-maxbytes, a tenant's quota): a value
  // that is not 0 but floors to 0 bytes ("0.5", meant as 0.5G) would turn the cap off without a word.
  if (bytes === 0 && value > 0) throw invalidArgument(field, '0 or a size of at least 1 byte', text);
  return { kind: 'bytes', bytes };
}

/** Bytes of a size given the base that "%" refers to. */
export function resolveSize(spec: SizeSpec, percentBaseBytes: number): number {
  return spec.kind === 'bytes' ? spec.bytes : Math.floor((percentBaseBytes * spec.percent) / 100);
}

const DURATION_MULTIPLIERS_MS: Record<string, number> = { '': 1000, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Parses "500ms", "30s", "5m", "1h", "2" (seconds) into milliseconds. */
export function parseDurationMs(text: string, field: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/.exec(text);
  const multiplier = match ? DURATION_MULTIPLIERS_MS[match[2]] : undefined;
  if (!match || multiplier === undefined) throw invalidArgument(field, 'a duration like 500ms, 30s, 5m, 1h or 2 (seconds)', text);
  return Math.round(Number(match[1]) * multiplier);
}
