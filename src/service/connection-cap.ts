/**
 * --max-connections: gRPC connections open at once on each --listen address. A connection needs no
 * token (tokens come with calls), so anyone who can reach a listener could open connections until the
 * daemon's open-file limit was reached: then every accept failed on every address (a new trainer got
 * UNAVAILABLE "No connection established", on the unix socket too) and so did the files the pools,
 * MMAP workspaces, exports and the data plane open. Past the cap, node's net server closes a new
 * connection as soon as it is accepted, before TLS or HTTP/2 ('drop'): connections already open are
 * served as before, and the other addresses and the files keep working (new clients of the flooded
 * address are refused until the flood ends). The cap is set on each of grpc-js's HTTP/2 servers
 * (grpc-http2-servers.ts), i.e. per --listen address.
 */
import type { Server } from '@grpc/grpc-js';
import { grpcHttp2Servers } from './grpc-http2-servers';

export interface ConnectionCap {
  /** How many HTTP/2 servers were capped (0: grpc-js keeps them elsewhere; nothing is capped). */
  readonly hooked: number;
  /** gRPC connections open now, every listener together. */
  readonly openConnections: number;
  /** Connections closed since start because a listener had --max-connections open. */
  readonly refusedTotal: number;
}

/** `onRefused` is told of each connection closed for the cap, with the peer's address when it has one. */
export function capConnections(server: Server, maxConnections: number, onRefused: (remoteAddress: string | undefined) => void): ConnectionCap {
  const http2Servers = grpcHttp2Servers(server);
  let open = 0;
  let refused = 0;
  for (const http2Server of http2Servers) {
    if (maxConnections > 0) http2Server.maxConnections = maxConnections;
    http2Server.on('connection', (socket: NodeJS.EventEmitter) => {
      open++;
      socket.once('close', () => open--);
    });
    http2Server.on('drop', (data?: { remoteAddress?: string }) => {
      refused++;
      onRefused(data?.remoteAddress);
    });
  }
  return {
    hooked: http2Servers.length,
    get openConnections() {
      return open;
    },
    get refusedTotal() {
      return refused;
    },
  };
}
