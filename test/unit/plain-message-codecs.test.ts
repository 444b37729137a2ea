/**
 * The plain-message codecs (src/service/plain-message-codecs.ts) against protobufjs's, for every message
 * type they take: what they decode must equal what protobufjs decodes, keys in the same order; what they
 * encode must decode (by protobufjs) to what protobufjs's own encoding does; and bytes or values they
 * decline must get protobufjs's answer, its errors included. The usual messages must take the fast path,
 * or all of this would hold by falling back every time.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadSync, type MessageTypeDefinition, type MethodDefinition, type PackageDefinition } from '@grpc/proto-loader';
import { afterAll, describe, expect, it } from 'vitest';
import { installPlainMessageCodecs, plainMessageCodecs, type Field, type MessageCodec } from '../../src/service/plain-message-codecs';
import { LOADER_OPTIONS, PROTO_FILES, loadTensormemProto } from '../../src/service/proto';
import { rng } from '../helpers/rng';

/** CODEC_FUZZ_SEED and CODEC_FUZZ_ROUNDS run other or longer sequences (a failure names its bytes in hex). */
const random = rng(Number(process.env.CODEC_FUZZ_SEED ?? 0x5eed));
const FUZZ_ROUNDS = Number(process.env.CODEC_FUZZ_ROUNDS ?? 400);

const plain = loadSync(PROTO_FILES, LOADER_OPTIONS);
const codecs = plainMessageCodecs(plain);
/** protobufjs's conversions (proto-loader's, with the loader options) of a message type. */
const generic = (name: string) => plain[name] as MessageTypeDefinition<unknown, unknown> & { serialize: (value: unknown) => Buffer; deserialize: (bytes: Buffer) => unknown };
const installed = loadSync(PROTO_FILES, LOADER_OPTIONS);
const installedMethods = installPlainMessageCodecs(installed);

/** JSON keeps key order, so equal JSON is the same object built the same way. */
const json = (value: unknown) => JSON.stringify(value);

/** What a function gives, or the message it throws. */
function outcome(run: () => unknown): string {
  try {
    return json(run());
  } catch (error) {
    return `throws ${(error as Error).message}`;
  }
}

const pick = <T>(values: readonly T[]): T => values[Math.floor(random() * values.length)];
const int = (max: number) => Math.floor(random() * (max + 1));
/** Mostly values the codecs take; one in 20 from 2^49 on, which decoding leaves to protobufjs. */
const bigUint = () => (random() < 0.05 ? pick([2 ** 49, 2 ** 53 - 1]) : pick([0, 1, 127, 128, 300, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 48 + 3, 2 ** 49 - 1, int(1e6)]));
/** Now and then with a lone surrogate, which encoding leaves to protobufjs. */
const text = () => (random() < 0.02 ? 'a\uD800b' : pick(['', 'a', 'arr-0123456789abcdef', 'ünïcødé ✓', '😀'.repeat(int(3)), 'x'.repeat(int(300))]));

/** A value of a field's plain type (sometimes left out, as the typed client leaves out options). */
function randomValue(field: Field, depth: number): unknown {
  if (random() < 0.1) return undefined;
  if (field.repeated) return Array.from({ length: int(5) }, () => pick([0, 1, 256, 65536, bigUint()]));
  switch (field.kind) {
    case 'string':
      return text();
    case 'bool':
      return random() < 0.5;
    case 'enum':
      return random() < 0.8 ? pick([...field.enumNames!.byName.keys()]) : pick([0, 1, 2, 77]);
    case 'int32':
      return pick([0, 1, 999_000_000, 2 ** 31 - 1]);
    case 'uint32':
      return pick([0, 1, 7, 2 ** 32 - 1]);
    case 'message':
      return depth > 2 || random() < 0.2 ? null : randomMessage(field.message!, depth + 1);
    default:
      return bigUint();
  }
}

function randomMessage(codec: MessageCodec, depth = 0): Record<string, unknown> {
  const value: Record<string, unknown> = {};
  for (const field of codec.fields) {
    const v = randomValue(field, depth);
    if (v !== undefined) value[field.name] = v;
  }
  return value;
}

/** Values of each kind the encoders must decline (protobufjs decides what they become, or throws). */
const ODD: Record<string, unknown[]> = {
  repeated: [[-1, 2], [1.5], ['12'], [2 ** 53], 'not a list', [null]],
  string: [42, {}, true, 'lone \uD800 surrogate', '\uDE00'],
  bool: [1, 'true'],
  enum: ['NO_SUCH_VALUE', -3, 1.5],
  int32: [-1, 2 ** 31, 1.5, '3'],
  uint32: [-1, 2 ** 32, 0.5],
  int64: [-1, 2 ** 53, 1.5, '12', 10n],
  uint64: [-1, 2 ** 53, 1.5, '12'],
  message: ['x', 5, [1]],
};

/** A protobuf-shaped message: fields of `codec` (most of the time) and others, any wire type, lengths past the end included. */
function randomWire(codec: MessageCodec | undefined, depth = 0): Buffer {
  const bytes: number[] = [];
  const varint = (value: bigint) => {
    let v = BigInt.asUintN(64, value);
    while (v >= 0x80n) {
      bytes.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    bytes.push(Number(v));
  };
  for (let fields = int(8); fields > 0; fields--) {
    const known = codec && codec.fields.length > 0 && random() < 0.8 ? pick(codec.fields) : undefined;
    const number = known ? known.number : int(40);
    const wireType = known && random() < 0.8 ? known.tag & 7 : pick([0, 0, 2, 2, 1, 5, 3, 6]);
    varint(BigInt(number * 8 + wireType));
    if (wireType === 0) varint(pick([0n, 1n, 5n, 300n, 2n ** 31n, 2n ** 32n, 2n ** 49n, 2n ** 63n, -1n, -5n, BigInt(int(200))]));
    else if (wireType === 1) bytes.push(...Array.from({ length: 8 }, () => int(255)));
    else if (wireType === 5) bytes.push(...Array.from({ length: 4 }, () => int(255)));
    else if (wireType === 2) {
      const roll = random();
      const body =
        roll < 0.35 && depth < 2
          ? randomWire(known?.message, depth + 1)
          : roll < 0.5 && known?.repeated
            ? Buffer.from(Array.from({ length: int(6) }, () => int(127)))
            : roll < 0.75
              ? Buffer.from(text())
              : Buffer.from(Array.from({ length: int(12) }, () => int(255)));
      varint(BigInt(body.length + (random() < 0.05 ? 3 : 0)));
      bytes.push(...body);
    }
  }
  if (random() < 0.05) bytes.pop();
  return Buffer.from(bytes);
}

describe('plain-message codecs', () => {
  it('take the messages of AllocateArray, FreeArray, GetArray and the lease calls, and no message holding a oneof, a map or bytes', () => {
    for (const name of ['AllocateArrayRequest', 'AllocateArrayResponse', 'ArrayInfo', 'FreeArrayRequest', 'FreeArrayResponse', 'GetArrayResponse', 'RenewLeaseRequest', 'RenewLeaseResponse']) expect(codecs.has(`tensormem.v1.${name}`), name).toBe(true);
    for (const name of ['WriteArrayRequest', 'ReadArrayResponse', 'ListArraysResponse', 'OpenLeaseRequest']) expect(codecs.has(`tensormem.v1.${name}`), name).toBe(false);
    for (const method of ['ArrayService.AllocateArray request', 'ArrayService.AllocateArray response', 'ArrayService.FreeArray request', 'ArrayService.FreeArray response']) expect(installedMethods).toContain(`tensormem.v1.${method}`);
  });

  it('the daemon and the typed client load them', () => {
    const info = { array_id: 'arr-5f3a', lease_id: 'lease-91c2', data_type: 'DATA_TYPE_FLOAT32', shape: [2, 3], byte_size: 24, placement: 'PLACEMENT_DEVICE', device: 0, workspace_id: '', attached: false, generation: 1, host_valid: false, device_valid: true, label: 'weights', has_host_mirror: false, created_at: { seconds: 1_780_000_000, nanos: 5_000_000 }, held_bytes: 256, host_exportable: false, device_exportable: false };
    const method = (loadTensormemProto().definition['tensormem.v1.ArrayService'] as Record<string, MethodDefinition<unknown, unknown>>).AllocateArray;
    const bytes = method.responseSerialize({ array: info });
    expect(bytes).toEqual(codecs.get('tensormem.v1.AllocateArrayResponse')!.encode({ array: info }));
    // protobufjs writes the fields at their defaults too: the bytes differ, the message does not.
    expect(bytes).not.toEqual(generic('tensormem.v1.AllocateArrayResponse').serialize({ array: info }));
    expect(codecs.get('tensormem.v1.AllocateArrayResponse')!.decode(bytes)).toEqual({ array: info });
    expect(method.responseDeserialize(bytes)).toEqual({ array: info });
  });

  it('encode to what protobufjs decodes as its own encoding, and decode as protobufjs decodes, for random values of every message type', () => {
    for (const [name, codec] of codecs) {
      let encodedByHand = 0;
      let decodedByHand = 0;
      for (let i = 0; i < 300; i++) {
        const value = randomMessage(codec);
        const bytes = generic(name).serialize(value);
        const expected = json(generic(name).deserialize(bytes));
        const encoded = codec.encode(value);
        if (encoded !== undefined) {
          encodedByHand++;
          expect(json(generic(name).deserialize(encoded)), `${name} ${json(value)}`).toBe(expected);
        }
        const decoded = codec.decode(bytes);
        if (decoded !== undefined) {
          decodedByHand++;
          expect(json(decoded), `${name} ${bytes.toString('hex')}`).toBe(expected);
        }
      }
      // Only integers from 2^49 on are left to protobufjs (when decoding; 2^53 on, when encoding).
      expect(encodedByHand, name).toBeGreaterThan(200);
      expect(decodedByHand, name).toBeGreaterThan(100);
    }
  });

  it('leave values of any other type to protobufjs, which encodes or refuses them as before', () => {
    for (const [name, codec] of codecs) {
      const method = { serialize: (value: unknown) => codec.encode(value) ?? generic(name).serialize(value) };
      for (const field of codec.fields) {
        for (const odd of ODD[field.repeated ? 'repeated' : field.kind]) {
          const value = { ...randomMessage(codec), [field.name]: odd };
          expect(codec.encode(value), `${name}.${field.name} = ${String(odd)}`).toBeUndefined();
          expect(outcome(() => method.serialize(value))).toBe(outcome(() => generic(name).serialize(value)));
        }
      }
      expect(codec.encode([])).toBeUndefined();
      expect(outcome(() => method.serialize([]))).toBe(outcome(() => generic(name).serialize([])));
    }
    // A value read twice (measured, then written) that changes in between.
    let reads = 0;
    const changing = Object.defineProperty({}, 'array_id', { enumerable: true, get: () => (reads++ === 0 ? 'a' : 'abc') });
    expect(codecs.get('tensormem.v1.FreeArrayRequest')!.encode(changing)).toBeUndefined();
  });

  it('decode any bytes as protobufjs decodes them, or leave them to it to refuse', () => {
    for (const [name, codec] of codecs) {
      let byHand = 0;
      for (let i = 0; i < FUZZ_ROUNDS; i++) {
        const bytes = random() < 0.1 ? Buffer.from(Array.from({ length: int(20) }, () => int(255))) : randomWire(codec);
        const decoded = codec.decode(bytes);
        const expected = outcome(() => generic(name).deserialize(bytes));
        if (decoded !== undefined) {
          byHand++;
          expect(json(decoded), `${name} ${bytes.toString('hex')}`).toBe(expected);
        }
      }
      expect(byHand, name).toBeGreaterThan(FUZZ_ROUNDS / 20);
    }
  });

  it('packed and unpacked shapes, repeated fields and unknown fields decode as protobufjs decodes them', () => {
    const request = codecs.get('tensormem.v1.AllocateArrayRequest')!;
    // lease_id "l", shape 2 and 3 unpacked, then [4, 5] packed, data_type 1 then 2, field 31 = 7, lease_id "m".
    const bytes = Buffer.from([0x0a, 0x01, 0x6c, 0x18, 0x02, 0x18, 0x03, 0x1a, 0x02, 0x04, 0x05, 0x10, 0x01, 0x10, 0x02, 0xf8, 0x01, 0x07, 0x0a, 0x01, 0x6d]);
    const expected = json(generic('tensormem.v1.AllocateArrayRequest').deserialize(bytes));
    expect(json(request.decode(bytes))).toBe(expected);
    expect(JSON.parse(expected)).toMatchObject({ shape: [2, 3, 4, 5], lease_id: 'm', data_type: 'DATA_TYPE_BFLOAT16' });
    // A negative dimension (a 10-byte varint) is protobufjs's to read: -1.
    const negative = generic('tensormem.v1.AllocateArrayRequest').serialize({ shape: [-1] });
    expect(request.decode(negative)).toBeUndefined();
    const method = (installed['tensormem.v1.ArrayService'] as Record<string, MethodDefinition<unknown, unknown>>).AllocateArray;
    expect((method.requestDeserialize(negative) as { shape: number[] }).shape).toEqual([-1]);
  });
});

/** Proto content tensormem.v1 does not have (yet), which the codecs must take as protobufjs does, or leave to it. */
const OTHER_PROTOS: Record<string, string> = {
  // Fields declared out of number order (toObject sorts its keys by number), enum aliases, the largest field numbers.
  'other3.proto': `syntax = "proto3";
    package other3;
    enum Color { option allow_alias = true; RED = 0; CRIMSON = 0; GREEN = 1; LIME = 1; }
    message Out { uint32 b = 2; string a = 1; repeated int64 r = 5; repeated uint64 q = 3; Color c = 4; Inner inner = 536870911; int32 i = 536870910; }
    message Inner { bool f = 1; int64 s = 268435455; }
    // One of its own kind: protobufjs refuses more than 100 levels.
    message Node { uint32 v = 1; Node next = 2; }
    message HoldsNode { Node node = 1; }`,
  // proto2: defaults of their own, an enum whose first value is not 0, a required field (which
  // proto-loader's descriptors show as optional).
  'other2.proto': `syntax = "proto2";
    package other2;
    enum E { A = 3; B = 0; }
    message Defaults { optional uint32 x = 1 [default = 7]; optional string s = 2 [default = "hi"]; }
    message FirstEnum { optional E e = 1; }
    message Required { optional string s = 1; required uint32 x = 2; }
    message HoldsRequired { optional Required r = 1; }`,
  // Two types of one short name whose fields read the same ("Bar", relative to each), a method of one
  // in the package of the other.
  'a/a.proto': `syntax = "proto3";
    package a;
    message Bar { uint32 x = 1; }
    message Foo { Bar b = 1; }`,
  'ambiguous.proto': `syntax = "proto3";
    package c;
    import "a/a.proto";
    message Bar { bool x = 1; }
    message Foo { Bar b = 1; }
    service S { rpc M(a.Foo) returns (Foo); }`,
};

describe('plain-message codecs, of proto content tensormem.v1 does not have', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tensormem-codec-protos-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'a'));
  for (const [file, text] of Object.entries(OTHER_PROTOS)) writeFileSync(join(dir, file), text);
  const files = ['other3.proto', 'other2.proto', 'ambiguous.proto'];
  const load = () => loadSync(files, { ...LOADER_OPTIONS, includeDirs: [dir] });
  const other = load();
  const otherCodecs = plainMessageCodecs(other);
  const otherGeneric = (name: string) => other[name] as MessageTypeDefinition<unknown, unknown> & { serialize: (value: unknown) => Buffer; deserialize: (bytes: Buffer) => unknown };

  it('decode and encode as protobufjs, or leave the message to it', () => {
    // These must keep the fast path: only their key order, aliases or field numbers are unusual.
    for (const name of ['other3.Out', 'other3.Inner']) expect(otherCodecs.has(name), name).toBe(true);
    for (const [name, codec] of otherCodecs) {
      expect(json(codec.decode(Buffer.alloc(0))), name).toBe(outcome(() => otherGeneric(name).deserialize(Buffer.alloc(0))));
      for (let i = 0; i < 200; i++) {
        const value = randomMessage(codec);
        const expected = outcome(() => otherGeneric(name).deserialize(otherGeneric(name).serialize(value)));
        const encoded = codec.encode(value);
        if (encoded !== undefined) expect(outcome(() => otherGeneric(name).deserialize(encoded)), `${name} ${json(value)}`).toBe(expected);
        const bytes = randomWire(codec);
        const decoded = codec.decode(bytes);
        if (decoded !== undefined) expect(json(decoded), `${name} ${bytes.toString('hex')}`).toBe(outcome(() => otherGeneric(name).deserialize(bytes)));
      }
    }
    // A message that protobufjs writes without its required field's value, but reads only with it.
    const required = otherCodecs.get('other2.Required');
    if (required) expect(outcome(() => otherGeneric('other2.Required').deserialize(required.encode({ s: 'x' }) ?? otherGeneric('other2.Required').serialize({ s: 'x' })))).toBe(outcome(() => otherGeneric('other2.Required').deserialize(otherGeneric('other2.Required').serialize({ s: 'x' }))));
  });

  it('leave messages nested deeper than protobufjs takes to it', () => {
    let value: Record<string, unknown> = { v: 1 };
    for (let i = 0; i < 150; i++) value = { v: i, next: value };
    const node = otherCodecs.get('other3.Node');
    const expected = outcome(() => otherGeneric('other3.Node').serialize(value));
    expect(expected).toMatch(/^throws/);
    if (node) expect(outcome(() => node.encode(value) ?? otherGeneric('other3.Node').serialize(value))).toBe(expected);
    // 150 levels of bytes, as another client might send.
    let bytes = Buffer.from([0x08, 0x01]);
    for (let i = 0; i < 150; i++) bytes = Buffer.concat([Buffer.from([0x12]), varintBytes(bytes.length), bytes]);
    if (node) expect(outcome(() => node.decode(bytes) ?? otherGeneric('other3.Node').deserialize(bytes))).toBe(outcome(() => otherGeneric('other3.Node').deserialize(bytes)));
    // One that holds itself: protobufjs's answer, not a stack overflow of the codec's.
    const cyclic: Record<string, unknown> = { v: 1 };
    cyclic.next = cyclic;
    if (node) expect(outcome(() => node.encode(cyclic) ?? otherGeneric('other3.Node').serialize(cyclic))).toBe(outcome(() => otherGeneric('other3.Node').serialize(cyclic)));
  });

  it('install a codec for a method only where its type is certain', () => {
    const installedOther = load();
    installPlainMessageCodecs(installedOther);
    const method = (installedOther['c.S'] as Record<string, MethodDefinition<unknown, unknown>>).M;
    const generic = (other['c.S'] as Record<string, MethodDefinition<unknown, unknown>>).M;
    // a.Foo { b: a.Bar { x: 5 } }, not c.Foo { b: c.Bar { x: true } }.
    const bytes = generic.requestSerialize({ b: { x: 5 } });
    expect(json(method.requestDeserialize(bytes))).toBe(json(generic.requestDeserialize(bytes)));
    expect(json(method.responseDeserialize(Buffer.from([0x0a, 0x02, 0x08, 0x01])))).toBe(json(generic.responseDeserialize(Buffer.from([0x0a, 0x02, 0x08, 0x01]))));
  });
});

function varintBytes(value: number): Buffer {
  const bytes: number[] = [];
  while (value >= 0x80) {
    bytes.push((value % 0x80) | 0x80);
    value = Math.floor(value / 0x80);
  }
  bytes.push(value);
  return Buffer.from(bytes);
}
