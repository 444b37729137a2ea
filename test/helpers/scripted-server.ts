/**
 * A TCP server in place of the data plane, to produce answers the daemon never gives (a proxy's, one
 * cut short, one held back): `onConnection` runs for each connection; close() destroys them all.
 */
import { AddressInfo, Server, Socket, createServer } from 'node:net';

export async function scriptedServer(onConnection: (socket: Socket) => void): Promise<{ endpoint: { host: string; port: number }; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
    onConnection(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: { host: '127.0.0.1', port: (server.address() as AddressInfo).port },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Runs `then` once the request's head is in (once per connection; later bytes are ignored). */
export function afterHead(socket: Socket, then: () => void): void {
  let head = '';
  const onData = (chunk: Buffer) => {
    head += chunk.toString('latin1');
    if (!head.includes('\r\n\r\n')) return;
    socket.off('data', onData);
    socket.resume();
    then();
  };
  socket.on('data', onData);
}

/**
 * Reads one PUT on `socket`: `onHead` once its head is in (the place to answer 100 Continue, or not),
 * then `onBody` with the body received so far (latin1) after each read that brought some of it.
 */
export function readPut(socket: Socket, onHead: () => void, onBody: (body: string) => void): void {
  let head = '';
  let body = '';
  socket.on('data', (chunk: Buffer) => {
    if (!head.includes('\r\n\r\n')) {
      head += chunk.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      onHead();
      body += head.slice(head.indexOf('\r\n\r\n') + 4);
    } else body += chunk.toString('latin1');
    if (body.length > 0) onBody(body);
  });
}

/** Answers each request, once its head is in, with `answer` (and keeps the connection open unless `end`). */
export function answerWith(answer: string | Buffer, end = false): (socket: Socket) => void {
  return (socket) => {
    let head = '';
    socket.on('data', (chunk: Buffer) => {
      if (head.includes('\r\n\r\n')) return;
      head += chunk.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      if (end) socket.end(answer);
      else socket.write(answer);
    });
  };
}
