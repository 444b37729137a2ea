/**
 * Bounds the bytes of gRPC messages still arriving that the daemon holds, all streams of all clients
 * together (--max-partial-message-bytes).
 *
 * grpc-js keeps every byte of a request message as it arrives until the message is whole (up to
 * --max-message-bytes, 64 MiB by default), before any interceptor or handler sees it, so before the
 * token is checked: 40 streams on one connection, each announcing a 60 MiB message and sending 59 MiB
 * of it, took a daemon from 100 MiB to 2.4 GiB with no token at all, and its --maxphysicalbytes then
 * refused every tenant's allocations. Here each stream's data frames are read alongside grpc-js (the
 * 5-byte gRPC message headers parsed to know where a message ends), the bytes of each stream's
 * unfinished message are summed, and while the sum is over the budget the stream holding the most is
 * reset (RST_STREAM, ENHANCE_YOUR_CALM), which lets grpc-js drop what it held of it. A client sending
 * messages of the usual size (the typed client's chunks are 1 MiB) finishes each within moments and
 * holds little; the streams reset first are those holding the most.
 *
 * grpc-js does not expose its HTTP/2 servers (grpc-http2-servers.ts reads its private map). grpc-js's own 'stream' listener runs first (it is added at bind) and
 * pauses the stream, so the 'data' listener added here does not start the flow early.
 */
import type { Server } from '@grpc/grpc-js';
import { constants, type ServerHttp2Stream } from 'node:http2';
import { grpcHttp2Servers } from './grpc-http2-servers';

/** The gRPC message header: a compression flag and a 4-byte length. */
const HEADER_BYTES = 5;

interface Arrival {
  stream: ServerHttp2Stream;
  /** Header bytes still to come of the message in progress (HEADER_BYTES between messages). */
  headerLeft: number;
  /** The message length, read from its header so far. */
  length: number;
  /** Body bytes still to come of the message in progress. */
  bodyLeft: number;
  /** Body bytes of the message in progress received: what grpc-js holds of it (its 5-byte header it keeps in fixed buffers), at most --max-message-bytes, so one message alone never passes a budget of at least that. */
  held: number;
  /** Reset here or closed: data still emitted (already buffered) is not counted again. */
  over: boolean;
}

export interface PartialMessageBudget {
  /** How many HTTP/2 servers were hooked (0: grpc-js keeps them elsewhere; nothing is bounded). */
  hooked: number;
  /** Bytes of unfinished messages held now. */
  readonly heldBytes: number;
  /** Streams reset for the budget since start. */
  readonly resetStreams: number;
}

/** `onReset` is told of each stream reset, with the bytes it held and the sum before the reset. */
export function limitPartialMessages(server: Server, limitBytes: number, onReset?: (streamHeld: number, totalHeld: number) => void): PartialMessageBudget {
  const holding = new Set<Arrival>();
  let heldBytes = 0;
  let resetStreams = 0;

  const release = (arrival: Arrival) => {
    arrival.over = true;
    heldBytes -= arrival.held;
    arrival.held = 0;
    holding.delete(arrival);
  };
  const enforce = () => {
    while (heldBytes > limitBytes && holding.size > 0) {
      let biggest: Arrival | undefined;
      for (const arrival of holding) if (!biggest || arrival.held > biggest.held) biggest = arrival;
      const total = heldBytes;
      const held = biggest!.held;
      release(biggest!);
      resetStreams++;
      biggest!.stream.close(constants.NGHTTP2_ENHANCE_YOUR_CALM);
      onReset?.(held, total);
    }
  };
  const onData = (arrival: Arrival, data: Buffer) => {
    if (arrival.over) return;
    let at = 0;
    const before = arrival.held;
    while (at < data.length) {
      if (arrival.headerLeft > 0) {
        // Bytes 1-4 of the header are the length, big-endian.
        const index = HEADER_BYTES - arrival.headerLeft;
        if (index >= 1) arrival.length = arrival.length * 256 + data[at];
        arrival.headerLeft--;
        at++;
        if (arrival.headerLeft === 0) arrival.bodyLeft = arrival.length;
      } else {
        const take = Math.min(arrival.bodyLeft, data.length - at);
        arrival.bodyLeft -= take;
        arrival.held += take;
        at += take;
      }
      if (arrival.headerLeft === 0 && arrival.bodyLeft === 0) {
        // A whole message: grpc-js hands it on and holds nothing more of it.
        arrival.held = 0;
        arrival.headerLeft = HEADER_BYTES;
        arrival.length = 0;
      }
    }
    heldBytes += arrival.held - before;
    if (arrival.held > 0) holding.add(arrival);
    else holding.delete(arrival);
    if (heldBytes > limitBytes) enforce();
  };
  const onStream = (stream: ServerHttp2Stream) => {
    const arrival: Arrival = { stream, headerLeft: HEADER_BYTES, length: 0, bodyLeft: 0, held: 0, over: false };
    stream.on('data', (data: Buffer) => onData(arrival, data));
    stream.once('close', () => release(arrival));
  };

  const http2Servers = limitBytes > 0 ? grpcHttp2Servers(server) : [];
  for (const http2Server of http2Servers) http2Server.on('stream', onStream);
  return {
    hooked: http2Servers.length,
    get heldBytes() {
      return heldBytes;
    },
    get resetStreams() {
      return resetStreams;
    },
  };
}
