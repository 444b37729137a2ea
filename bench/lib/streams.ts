/** Client-side gRPC stream helpers shared by the rows that move bytes (B3, L1). */
import type { ClientReadableStream, ClientWritableStream, ServiceError } from '@grpc/grpc-js';

export type Writable = ClientWritableStream<unknown>;

/** Sends [header?] then `data` in `chunkBytes` views over `stream`; resolves when the call answers. */
export function upload(open: (callback: (error: ServiceError | null, value?: unknown) => void) => Writable, data: Buffer, chunkBytes: number, first?: unknown, wrap: (chunk: Buffer) => unknown = (chunk) => ({ data: chunk })): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const stream = open((error, value) => (error ? reject(error) : resolve(value)));
    const pump = async () => {
      if (first !== undefined) stream.write(first);
      for (let position = 0; position < data.byteLength; position += chunkBytes) {
        const chunk = data.subarray(position, Math.min(position + chunkBytes, data.byteLength));
        if (!stream.write(wrap(chunk))) await new Promise((drained) => stream.once('drain', drained));
      }
      stream.end();
    };
    pump().catch(reject);
  });
}

/** Copies every message's `field` into `into` in order; resolves to the bytes received. */
export function download(stream: ClientReadableStream<Record<string, Buffer>>, field: string, into: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    let position = 0;
    stream.on('data', (message: Record<string, Buffer>) => {
      const chunk = message[field];
      if (position + chunk.byteLength > into.byteLength) {
        stream.cancel();
        reject(new Error(`received more than ${into.byteLength} bytes`));
        return;
      }
      chunk.copy(into, position);
      position += chunk.byteLength;
    });
    stream.on('error', reject);
    stream.on('end', () => resolve(position));
  });
}
