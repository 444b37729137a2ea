/**
 * ReadArray's messages encoded in place in the ring's chunks (read-array-messages.ts) are the bytes
 * protobufjs writes for the same { offset, data }, and decode back to them.
 */
import { loadSync, type MethodDefinition } from '@grpc/proto-loader';
import { describe, expect, it } from 'vitest';
import { READ_MESSAGE_HEADROOM, readArrayResponseIn } from '../../src/service/read-array-messages';
import { LOADER_OPTIONS, PROTO_FILES } from '../../src/service/proto';

const definition = loadSync(PROTO_FILES, LOADER_OPTIONS);
const readArray = (definition['tensormem.v1.ArrayService'] as Record<string, MethodDefinition<unknown, { offset: number; data: Buffer }>>).ReadArray;

describe('readArrayResponseIn', () => {
  const offsets = [0, 1, 127, 128, 16_383, 16_384, 2 ** 31 - 1, 2 ** 32, 2 ** 53 - 1];
  const sizes = [0, 1, 127, 128, 16_384, 1024 * 1024 + 3];
  for (const offset of offsets) {
    it(`offset ${offset}: the bytes protobufjs writes, for data of ${sizes.join(', ')} bytes`, () => {
      for (const size of sizes) {
        const chunk = Buffer.alloc(READ_MESSAGE_HEADROOM + size + 5, 0xee);
        const data = chunk.subarray(READ_MESSAGE_HEADROOM, READ_MESSAGE_HEADROOM + size);
        for (let i = 0; i < size; i++) data[i] = (i * 7 + offset) & 0xff;
        const expected = readArray.responseSerialize({ offset, data: Buffer.from(data) });
        const message = readArrayResponseIn(chunk, offset, size);
        expect(message.bytes.equals(expected)).toBe(true);
        // A view of the chunk, not a copy.
        expect(message.bytes.buffer).toBe(chunk.buffer);
        const decoded = readArray.responseDeserialize(message.bytes);
        expect(decoded.offset).toBe(offset);
        expect(Buffer.compare(decoded.data, data)).toBe(0);
      }
    });
  }
});
