/**
 * ReadArray's response messages, encoded in place: each chunk of the ring (array-service.ts) holds
 * READ_MESSAGE_HEADROOM bytes before its data, and the message's fields (offset = 1, data = 2) are
 * written just before the data once the data is in, so the message is the chunk's own bytes
 * (PreEncoded, which the responses' serializer passes on: chunked-serialize.ts). protobufjs's
 * encoder copied every data chunk into a new Buffer first, one copy of every byte read more than a
 * bare grpc-js server stream makes (B3.read, once the client's window let the stream run at
 * 0.6-0.7 GB/s). The bytes are what protobufjs writes (which writes offset 0 too).
 */
import { LENGTH_DELIMITED, VARINT, varintLength, writeVarintAt } from './proto-wire';
import { PreEncoded } from './snapshot-encoder';

/** The most bytes the fields before the data take: two tags, a 64-bit varint and a 32-bit length. */
export const READ_MESSAGE_HEADROOM = 1 + 10 + 1 + 5;

const OFFSET_TAG = (1 << 3) | VARINT;
const DATA_TAG = (2 << 3) | LENGTH_DELIMITED;

/**
 * The ReadArrayResponse { offset, data } of the `dataBytes` at chunk[READ_MESSAGE_HEADROOM...]: its
 * fields written into the headroom, right before the data; the message is a view of `chunk`.
 */
export function readArrayResponseIn(chunk: Buffer, offset: number, dataBytes: number): PreEncoded {
  const start = READ_MESSAGE_HEADROOM - (1 + varintLength(offset) + 1 + varintLength(dataBytes));
  chunk[start] = OFFSET_TAG;
  let at = writeVarintAt(chunk, start + 1, offset);
  chunk[at++] = DATA_TAG;
  writeVarintAt(chunk, at, dataBytes);
  return new PreEncoded(chunk.subarray(start, READ_MESSAGE_HEADROOM + dataBytes));
}
