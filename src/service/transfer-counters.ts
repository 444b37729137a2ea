/**
 * Bytes moved between clients and arrays since start, by transport and direction: what
 * tensormem_array_transfer_bytes_total reports. Exports (shared memory, CUDA IPC) move no byte
 * through the daemon and are not counted.
 */
export type TransferTransport = 'grpc' | 'data_plane';
/** write: client → array (WriteArray chunks, PUT bodies); read: array → client (ReadArray messages, GET bodies). */
export type TransferDirection = 'write' | 'read';

export class TransferCounters {
  private readonly bytes: Record<TransferTransport, Record<TransferDirection, number>> = {
    grpc: { write: 0, read: 0 },
    data_plane: { write: 0, read: 0 },
  };

  /** `bytes` more moved: written into an array (as each piece lands), or read out of one (as each piece is handed to the socket or stream). */
  add(transport: TransferTransport, direction: TransferDirection, bytes: number): void {
    this.bytes[transport][direction] += bytes;
  }

  /** Every transport and direction with its running total. */
  totals(): Array<{ transport: TransferTransport; direction: TransferDirection; bytes: number }> {
    const rows: Array<{ transport: TransferTransport; direction: TransferDirection; bytes: number }> = [];
    for (const transport of ['grpc', 'data_plane'] as const) for (const direction of ['write', 'read'] as const) rows.push({ transport, direction, bytes: this.bytes[transport][direction] });
    return rows;
  }
}
