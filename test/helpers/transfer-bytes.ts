/** The daemon's per-path transfer totals, read from its status listener's /metrics. */

/** tensormem_array_transfer_bytes_total{transport, direction}: the bytes the daemon has moved that way since it started. */
export async function transferBytes(statusBase: string, transport: 'grpc' | 'data_plane', direction: 'write' | 'read'): Promise<number> {
  const text = await (await fetch(`${statusBase}/metrics`)).text();
  const line = new RegExp(`^tensormem_array_transfer_bytes_total\\{transport="${transport}",direction="${direction}"\\} (\\d+)$`, 'm').exec(text);
  if (!line) throw new Error(`no tensormem_array_transfer_bytes_total{transport="${transport}",direction="${direction}"} in /metrics`);
  return Number(line[1]);
}
