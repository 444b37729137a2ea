/** A count with its noun for tensormemctl's text: `1 lease`, `0 leases`, `3 leases`. `plural` for a noun not made plural with an s. */
export function counted(count: number, noun: string, plural = `${noun}s`): string {
  return `${count} ${count === 1 ? noun : plural}`;
}
