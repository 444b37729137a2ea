/**
 * A TCP proxy to a data plane for tests that tamper with what a client sends: each connection's bytes
 * from the client go through `fromClient`, which forwards them (up.write), changed or not, or cuts the
 * connection; the daemon's bytes go back as they are.
 */
import { AddressInfo, Server, Socket, createConnection, createServer } from 'node:net';
import type { DataPlaneEndpoint } from '../../src/dataplane/data-plane-client';

export interface TcpProxy {
  endpoint: DataPlaneEndpoint;
  close(): Promise<void>;
}

/** `onConnection` is called for each connection and gives the handler of that connection's client bytes. */
export async function tcpProxy(target: { host: string; port: number }, onConnection: () => (bytes: Buffer, up: Socket, down: Socket) => void): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((down) => {
    const up = createConnection(target);
    for (const socket of [down, up]) {
      sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => sockets.delete(socket));
    }
    const fromClient = onConnection();
    down.on('data', (bytes: Buffer) => fromClient(bytes, up, down));
    up.on('data', (bytes: Buffer) => down.write(bytes));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: { host: '127.0.0.1', port: (server.address() as AddressInfo).port },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
