/**
 * B2's baseline: a raw Node TCP (or unix) socket pipe, as a child process like the daemon. Per
 * connection, a 9-byte request: 'U' or 'D' and a big-endian uint64 length.
 *   U: receive that many bytes ('data' events, counted, not copied), then answer "K" and close.
 *   D: send that many bytes from one preallocated buffer, then close.
 * argv: [maxBytes, socketPath]. Prints {"event":"listening","addresses":[…]} on stdout; exits when
 * stdin closes (so it never outlives the runner).
 */
import { Server, Socket, createServer } from 'node:net';
import { AddressInfo } from 'node:net';

const maxBytes = Number(process.argv[2]);
const socketPath = process.argv[3];
const source = Buffer.alloc(maxBytes, 0x5a);

function serve(socket: Socket): void {
  let head = Buffer.alloc(0);
  let remaining = -1;
  socket.on('data', (chunk: Buffer) => {
    if (remaining < 0) {
      head = Buffer.concat([head, chunk]);
      if (head.byteLength < 9) return;
      const op = String.fromCharCode(head[0]);
      const length = Number(head.readBigUInt64BE(1));
      if (length > maxBytes) {
        socket.destroy();
        return;
      }
      if (op === 'D') {
        remaining = 0;
        socket.end(source.subarray(0, length));
        return;
      }
      remaining = length - (head.byteLength - 9);
    } else {
      remaining -= chunk.byteLength;
    }
    if (remaining === 0) socket.end('K');
  });
  socket.on('error', () => socket.destroy());
}

async function listen(server: Server, target: string | { port: number; host: string }): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    if (typeof target === 'string') server.listen(target, resolve);
    else server.listen(target.port, target.host, resolve);
  });
}

async function main(): Promise<void> {
  const tcp = createServer(serve);
  const unix = createServer(serve);
  await listen(tcp, { port: 0, host: '127.0.0.1' });
  await listen(unix, socketPath);
  const port = (tcp.address() as AddressInfo).port;
  process.stdout.write(`${JSON.stringify({ event: 'listening', addresses: [`127.0.0.1:${port}`, `unix:${socketPath}`] })}\n`);
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
}

main().catch((error) => {
  process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
