/**
 * The baseline server, run as its own process (as tensormemd is): a grpc-js Server with the daemon's
 * channel options (max message size 64 MiB both ways) serving bench/echo/echo.proto on 127.0.0.1:0
 * and on a unix socket. Prints one JSON line {"event":"listening","addresses":[...]} on stdout and
 * exits when its stdin closes (the runner went away) or on SIGTERM.
 *
 * argv: [maxMessageBytes] [unixSocketPath] [storeBytes]
 */
import { Server, ServerCredentials, ServerReadableStream, ServerWritableStream, sendUnaryData, ServerUnaryCall } from '@grpc/grpc-js';
import { loadEchoService } from './echo-proto';

interface Chunk {
  data: Buffer;
}

async function main(): Promise<void> {
  const maxMessageBytes = Number(process.argv[2] ?? 64 * 1024 * 1024);
  const unixPath = process.argv[3];
  const server = new Server({ 'grpc.max_receive_message_length': maxMessageBytes, 'grpc.max_send_message_length': maxMessageBytes });
  const Echo = loadEchoService();

  // Upload destination and download source: allocated and touched once up front (like pool memory
  // already in use), grown by doubling if a transfer is larger.
  let store = Buffer.alloc(Number(process.argv[4] ?? 0), 0x5a);
  const ensure = (bytes: number) => {
    if (store.byteLength >= bytes) return;
    const grown = Buffer.alloc(Math.max(bytes, store.byteLength * 2), 0x5a);
    store.copy(grown);
    store = grown;
  };

  server.addService(Echo.service, {
    Echo: (call: ServerUnaryCall<{ payload: Buffer }, { payload: Buffer }>, callback: sendUnaryData<{ payload: Buffer }>) => {
      callback(null, { payload: call.request.payload });
    },
    Upload: (call: ServerReadableStream<Chunk, { bytes_written: number }>, callback: sendUnaryData<{ bytes_written: number }>) => {
      let position = 0;
      call.on('data', (message: Chunk) => {
        ensure(position + message.data.byteLength);
        message.data.copy(store, position);
        position += message.data.byteLength;
      });
      call.on('end', () => callback(null, { bytes_written: position }));
      call.on('error', () => {});
    },
    Download: (call: ServerWritableStream<{ bytes: number; chunk_bytes: number }, Chunk>) => {
      const total = call.request.bytes;
      const chunkBytes = call.request.chunk_bytes || 1024 * 1024;
      ensure(total);
      let position = 0;
      const pump = () => {
        while (position < total && !call.cancelled) {
          const end = Math.min(position + chunkBytes, total);
          const more = call.write({ data: store.subarray(position, end) });
          position = end;
          if (!more) {
            call.once('drain', pump);
            return;
          }
        }
        call.end();
      };
      pump();
    },
  });

  const bind = (address: string) =>
    new Promise<string>((resolve, reject) =>
      server.bindAsync(address, ServerCredentials.createInsecure(), (error, port) => (error ? reject(error) : resolve(address.startsWith('unix:') ? address : address.replace(/:0$/, `:${port}`)))),
    );
  const addresses = [await bind('127.0.0.1:0')];
  if (unixPath) addresses.push(await bind(`unix:${unixPath}`));
  process.stdout.write(`${JSON.stringify({ event: 'listening', addresses })}\n`);

  const stop = () => {
    server.forceShutdown();
    process.exit(0);
  };
  process.stdin.on('end', stop);
  process.stdin.on('error', stop);
  process.stdin.resume();
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((error) => {
  process.stderr.write(`echo-server: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
