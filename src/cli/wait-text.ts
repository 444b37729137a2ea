/** A wait as tensormemctl's messages name it: "250 ms", "1.2 s", "11 s" (a --timeout or --interval is given in the same units). */
export function waitText(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${Number((ms / 1000).toFixed(3))} s`;
}
