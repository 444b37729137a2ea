/**
 * The HTTP/2 servers behind a grpc-js Server, one per bound address. grpc-js does not expose them; they
 * are read from its private `http2Servers` map (connection-setup-guard, finished-stream-release and
 * partial-message-budget hook their events). Where that map is missing (another grpc-js version) the
 * list is empty, and each caller says what it then leaves undone.
 */
import type { Server } from '@grpc/grpc-js';
import type { Http2Server } from 'node:http2';

export function grpcHttp2Servers(server: Server): Http2Server[] {
  const http2Servers = (server as unknown as { http2Servers?: unknown }).http2Servers;
  if (!(http2Servers instanceof Map)) return [];
  return [...(http2Servers.keys() as IterableIterator<Http2Server>)].filter((http2Server) => typeof http2Server?.on === 'function');
}
