/** A google.protobuf.Timestamp as the daemon's answers carry it (seconds as a string or number), in ms since the epoch; 0 for none. */
export function timestampMs(timestamp: { seconds: string | number; nanos: number } | null | undefined): number {
  return timestamp ? Number(timestamp.seconds) * 1000 + timestamp.nanos / 1e6 : 0;
}
