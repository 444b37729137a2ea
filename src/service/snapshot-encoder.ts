/**
 * GetMemorySnapshot's reply encoded by hand, a slice of blocks at a time with other work let in
 * between. protobufjs turned every block into a message object before encoding a byte: at 300k live
 * blocks that held the event loop for 2.4 s in a bare process and 6.5 s in a busy daemon (every
 * trainer's AllocateArray waited that long), and past some 700k blocks the reply (about 94 B a block)
 * was then refused by grpc-js as over --max-message-bytes after all that work. Here the pools are
 * taken at one instant (MemoryManager.captureSnapshot: copies, no sorting), their blocks sorted from
 * that capture and encoded SNAPSHOT_SLICE blocks per turn of the event loop into pieces joined once
 * at the end, and a reply that would pass --max-message-bytes is refused as soon as it does, saying so.
 */
import type { SegmentSnapshot } from '../memory/memory-resource';
import { TensormemError } from '../errors';
import { timestamp } from './handlers';
import { blockInfo, memoryInfo } from './memory-service';
import type { MessageCodec } from './plain-message-codecs';
import { loadTensormemProto } from './proto';
import { ProtoWriter } from './proto-wire';
import type { ServiceContext } from './service-context';

/** Blocks encoded between two yields to the event loop (about 3 ms of work). */
export const SNAPSHOT_SLICE = 4096;

/** A reply already encoded: the responses' serializer (chunked-serialize.ts) sends its bytes as they are. */
export class PreEncoded {
  constructor(readonly bytes: Buffer) {}
}

/** A segment's `blocks` field (3): BlockSnapshot as blockInfo gives it, through its plain-message codec. */
function writeBlock(out: ProtoWriter, block: SegmentSnapshot['blocks'][number], codec: MessageCodec): void {
  const info = blockInfo(block);
  if (!codec.writeField(3, info, out)) throw new Error(`BlockSnapshot ${JSON.stringify(info)} is not a plain message`);
}

function blockCodec(): MessageCodec {
  const codec = loadTensormemProto().codecs.get('tensormem.v1.BlockSnapshot');
  if (!codec) throw new Error('tensormem.v1.BlockSnapshot has no plain-message codec (a field of a kind plain-message-codecs.ts does not take?)');
  return codec;
}

/** The bytes of a length-delimited field's value: `encoded` is one message holding only `field` (tag and length stripped). */
function fieldValue(encoded: Buffer): Buffer {
  let at = 1; // one-byte tag (fields 1-15)
  while (encoded[at] & 0x80) at++;
  return encoded.subarray(at + 1);
}

function tooLarge(blocks: number, maxBytes: number): TensormemError {
  return new TensormemError(
    'RESOURCE_EXHAUSTED',
    'MESSAGE_TOO_LARGE',
    `the memory snapshot of ${blocks} blocks is larger than --max-message-bytes (${maxBytes} bytes, about 94 bytes a block): raise --max-message-bytes on the daemon and the client, or read /api/snapshot on --metrics-listen`,
    { blocks: String(blocks), max_message_bytes: String(maxBytes) },
  );
}

/** A length-delimited field's tag and length, the field's value to follow. */
function fieldHead(field: number, length: number): Buffer {
  const out = new ProtoWriter(16);
  out.tag(field, 2);
  out.varint(length);
  return out.take();
}

/** Bytes encoded in pieces, joined once at the end (a snapshot of 10^6 blocks is about 94 MB: each copy of it a stall of its own). */
class Parts {
  readonly list: Buffer[] = [];
  length = 0;
  add(part: Buffer): void {
    this.list.push(part);
    this.length += part.length;
  }
  /** `body` as field `field` of this message. */
  addField(field: number, body: Parts): void {
    this.add(fieldHead(field, body.length));
    for (const part of body.list) this.list.push(part);
    this.length += body.length;
  }
}

/**
 * GetMemorySnapshotResponse{snapshot} as bytes: taken_at and info (encoded by `serialize`), then every
 * pool's segments and their blocks (blockInfo), the same message the generated serializer would make of
 * them, encoded a slice of blocks at a time.
 */
export async function encodeMemorySnapshot(context: ServiceContext, serialize: (value: unknown) => Buffer, maxBytes: number): Promise<PreEncoded> {
  const codec = blockCodec();
  // The pools and their counters at one instant; the blocks are then sorted and listed from that
  // capture a slice at a time (MemoryManager.captureSnapshot), as they are encoded.
  const pools = context.memory.captureSnapshot();
  const head = fieldValue(serialize({ snapshot: { taken_at: timestamp(Date.now()), info: memoryInfo(context) } }));
  const blockCount = pools.reduce((sum, { capture }) => sum + capture.blockCount, 0);
  const snapshot = new Parts();
  snapshot.add(head);
  for (const { pool, capture } of pools) {
    const poolBody = new Parts();
    const name = new ProtoWriter(64);
    name.string(1, pool);
    poolBody.add(name.take());
    for await (const segment of capture.segmentsInSlices()) {
      const segmentBody = new Parts();
      let out = new ProtoWriter(64 * 1024);
      out.number(1, segment.chunkHandle);
      out.number(2, segment.bytes);
      for (let k = 0; k < segment.count; k++) {
        writeBlock(out, segment.block(k), codec);
        if ((k + 1) % SNAPSHOT_SLICE === 0) {
          segmentBody.add(out.take());
          out = new ProtoWriter(out.buffer.length);
          if (snapshot.length + poolBody.length + segmentBody.length > maxBytes) throw tooLarge(blockCount, maxBytes);
          await new Promise<void>((resolve) => setImmediate(resolve));
        }
      }
      segmentBody.add(out.take());
      poolBody.addField(2, segmentBody);
    }
    snapshot.addField(2, poolBody);
    if (snapshot.length > maxBytes) throw tooLarge(blockCount, maxBytes);
  }
  const response = new Parts();
  response.addField(1, snapshot);
  if (response.length > maxBytes) throw tooLarge(blockCount, maxBytes);
  return new PreEncoded(Buffer.concat(response.list, response.length));
}
