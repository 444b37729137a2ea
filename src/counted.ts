/** A count with its noun for text people read (tensormemctl's, the daemon's log lines), beside the helpers every layer may import: `1 lease`, `0 leases`, `3 leases`. `plural` for a noun not made plural with an s. */
export function counted(count: number, noun: string, plural = `${noun}s`): string {
  return `${count} ${count === 1 ? noun : plural}`;
}
