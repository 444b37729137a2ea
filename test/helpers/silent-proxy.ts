/**
 * A TCP proxy between a client and a daemon that can go silent: from then on it forwards nothing
 * either way and keeps both sockets open, as a peer whose host lost power or whose network went away
 * looks to the other side (no FIN, no RST). With `passDownBytes`, each connection passes only the
 * target's first that many bytes to its client and drops the rest while reading on: a client that
 * stopped reading, where a paused grpc-js stream is not one (grpc-js took a whole 64 MiB ReadArray in
 * anyway); the target's close still reaches the client. `refuse()` and `accept()` stop and restart its
 * listener on the same port: a data listener or proxy that restarts, refusing connections meanwhile.
 */
import { AddressInfo, Server, Socket, createConnection, createServer } from 'node:net';

export interface SilentProxy {
  address: string;
  /** From now on nothing is forwarded either way; the sockets stay open. */
  goSilent(): void;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** Closes the open connections and stops listening: connections to its port are refused. */
  refuse(): Promise<void>;
  /** Listens on its port again (nothing to do when it is listening). */
  accept(): Promise<void>;
  close(): Promise<void>;
}

export async function silentProxy(target: string, options: { passDownBytes?: number } = {}): Promise<SilentProxy> {
  const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
  const sockets = new Set<Socket>();
  let silent = false;
  let accepted = 0;
  const server: Server = createServer((down) => {
    accepted++;
    const up = createConnection({ host, port });
    for (const socket of [down, up]) {
      sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => sockets.delete(socket));
    }
    let passedDown = 0;
    const passDownBytes = options.passDownBytes ?? Infinity;
    down.on('data', (bytes) => silent || up.write(bytes));
    up.on('data', (bytes) => {
      if (silent || passedDown >= passDownBytes) return;
      down.write(bytes.subarray(0, passDownBytes - passedDown));
      passedDown += bytes.byteLength;
    });
    down.on('end', () => silent || up.end());
    up.on('end', () => silent || down.end());
    // A close without an end (a reset) too, as long as the proxy forwards anything.
    down.on('close', () => silent || up.destroy());
    up.on('close', () => silent || down.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const listenPort = (server.address() as AddressInfo).port;
  const refuse = async () => {
    for (const socket of sockets) socket.destroy();
    if (server.listening) await new Promise((resolve) => server.close(resolve));
  };
  return {
    address: `127.0.0.1:${listenPort}`,
    goSilent: () => {
      silent = true;
    },
    get accepted() {
      return accepted;
    },
    refuse,
    accept: async () => {
      if (server.listening) return;
      // Rejects when the port was taken meanwhile (listen's 'error', otherwise an uncaught one).
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(listenPort, '127.0.0.1', () => {
          server.off('error', reject);
          resolve();
        });
      });
    },
    close: refuse,
  };
}
