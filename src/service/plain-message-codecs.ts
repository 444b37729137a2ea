/**
 * Codecs for the messages made only of plain fields (strings, booleans, enums, 32- and 64-bit integers,
 * repeated 64-bit integers, and other such messages), built from the proto descriptors that
 * proto-loader keeps, and put in front of protobufjs's for every call that sends or receives one
 * (AllocateArray, FreeArray, GetArray, RenewLease, ...), on both sides: the daemon and the typed client.
 *
 * protobufjs makes a message object of every message and converts it to or from the plain object the
 * handlers use (`fromObject`; `toObject` with the loader options: defaults, enums as names, int64s as
 * numbers). In B1's CPU profiles that was about 34 µs of the daemon's time per AllocateArray + FreeArray
 * and 19 µs of the client's. These codecs read and write the plain objects directly, with code generated
 * for each message type from its fields (see compile()).
 *
 * Each codec takes only the usual case and hands every other one to protobufjs: a decoder declines
 * bytes ProtoReader does not take (see there), an encoder a value that is not of the plain type of its
 * field (enum names or numbers, non-negative integers up to 2^53 - 1, strings, booleans, objects for
 * messages). So what any message means is still protobufjs's to decide, only the usual case is faster;
 * test/unit/plain-message-codecs.test.ts holds the two equal over random values and random bytes.
 */
import type { EnumTypeDefinition, MessageTypeDefinition, MethodDefinition, PackageDefinition } from '@grpc/proto-loader';
import { LENGTH_DELIMITED, ProtoReader, ProtoWriter, VARINT, varintLength } from './proto-wire';

type Kind = 'string' | 'bool' | 'int32' | 'uint32' | 'enum' | 'int64' | 'uint64' | 'message';

export interface Field {
  readonly name: string;
  readonly number: number;
  readonly kind: Kind;
  /** Only for int64 and uint64 (packed or not). */
  readonly repeated: boolean;
  /** The tag this codec writes: the field number and its wire type. */
  readonly tag: number;
  readonly enumNames?: EnumNames;
  /** Set once every message type is known (a message may hold one of its own kind). */
  message?: MessageCodec;
}

export interface EnumNames {
  readonly byNumber: ReadonlyMap<number, string>;
  readonly byName: ReadonlyMap<string, number>;
  /** The number of the first value declared: protobufjs's default for a field of this enum. */
  readonly first: number | undefined;
}

export interface MessageCodec {
  readonly name: string;
  /** By field number, for decoding. */
  readonly byNumber: readonly (Field | undefined)[];
  /** In field number order, for encoding. */
  readonly fields: readonly Field[];
  /** The keys toObject sets, in its order: the repeated fields, then the others, each by field number. */
  readonly keyOrder: readonly Field[];
  /** The message as toObject gives it, or undefined for bytes protobufjs must read. */
  decode: (bytes: Buffer) => Record<string, unknown> | undefined;
  /** The message's bytes, or undefined for a value protobufjs must encode. */
  encode: (value: unknown) => Buffer | undefined;
  /**
   * Writes the message into `writer` as its length-delimited field `field` (a message being encoded by
   * hand: snapshot-encoder.ts); false, and nothing written, for a value protobufjs must encode.
   */
  writeField: (field: number, value: unknown, writer: ProtoWriter) => boolean;
}

const KINDS: Record<string, Kind> = {
  TYPE_STRING: 'string',
  TYPE_BOOL: 'bool',
  TYPE_INT32: 'int32',
  TYPE_UINT32: 'uint32',
  TYPE_ENUM: 'enum',
  TYPE_INT64: 'int64',
  TYPE_UINT64: 'uint64',
  TYPE_MESSAGE: 'message',
};

/** A field as proto-loader's descriptors give it (DescriptorProto's `field`). */
export interface FieldDescriptor {
  name: string;
  number: number;
  label: string;
  type: string;
  typeName: string;
  /** Set for a proto2 field with `[default = ...]`. */
  defaultValue?: string;
}

interface MessageDescriptor {
  field: FieldDescriptor[];
  oneofDecl: unknown[];
}

/** What a function gives, as JSON, or that it throws. */
function json(run: () => unknown): string {
  try {
    return JSON.stringify(run());
  } catch (error) {
    return `throws ${(error as Error).message}`;
  }
}

/** The deepest nesting of messages a codec takes (well under protobufjs's recursionLimit of 100). */
const MAX_NESTING = 32;

const isMessageType = (definition: PackageDefinition, name: string) => (definition[name] as { format?: string } | undefined)?.format === 'Protocol Buffer 3 DescriptorProto';
const isEnumType = (definition: PackageDefinition, name: string) => (definition[name] as { format?: string } | undefined)?.format === 'Protocol Buffer 3 EnumDescriptorProto';

/** A type name as the descriptor gives it ("DataType", "google.protobuf.Timestamp"), resolved from `scope` outwards as protoc does. */
export function resolveType(definition: PackageDefinition, scope: string, typeName: string): string | undefined {
  if (typeName.startsWith('.')) return typeName.slice(1);
  const parts = scope.split('.');
  for (let i = parts.length; i >= 0; i--) {
    const candidate = [...parts.slice(0, i), typeName].join('.');
    if (definition[candidate] !== undefined) return candidate;
  }
  return undefined;
}

/**
 * The codecs of every message type in `definition` made only of plain fields (a message holding a
 * oneof, a map, bytes, a float, a repeated string or message, or another message that is not plain, has none).
 */
export function plainMessageCodecs(definition: PackageDefinition): Map<string, MessageCodec> {
  const enums = new Map<string, EnumNames>();
  const enumNames = (name: string): EnumNames => {
    let names = enums.get(name);
    if (!names) {
      const values = ((definition[name] as EnumTypeDefinition).type as { value: { name: string; number: number }[] }).value;
      // The first name of a number, as protobufjs's valuesById keeps (aliases aside, one name each).
      const byNumber = new Map<number, string>();
      for (const value of values) if (!byNumber.has(value.number)) byNumber.set(value.number, value.name);
      names = { byNumber, byName: new Map(values.map((value) => [value.name, value.number])), first: values[0]?.number };
      enums.set(name, names);
    }
    return names;
  };

  const codecs = new Map<string, MessageCodec>();
  const nestedTypes = new Map<Field, string>();
  for (const name of Object.keys(definition)) {
    if (!isMessageType(definition, name)) continue;
    const descriptor = (definition[name] as MessageTypeDefinition<unknown, unknown>).type as unknown as MessageDescriptor;
    if (descriptor.oneofDecl.length > 0) continue;
    const fields: Field[] = [];
    let plain = true;
    for (const f of descriptor.field) {
      const kind = KINDS[f.type];
      const repeated = f.label === 'LABEL_REPEATED';
      // A field with a default of its own (proto2): the codecs know only proto3's defaults.
      if (kind === undefined || (repeated && kind !== 'int64' && kind !== 'uint64') || (f.defaultValue ?? '') !== '') {
        plain = false;
        break;
      }
      const typeName = kind === 'enum' || kind === 'message' ? resolveType(definition, name, f.typeName) : undefined;
      if ((kind === 'enum' && (typeName === undefined || !isEnumType(definition, typeName))) || (kind === 'message' && (typeName === undefined || !isMessageType(definition, typeName)))) {
        plain = false;
        break;
      }
      const wireType = kind === 'string' || kind === 'message' || repeated ? LENGTH_DELIMITED : VARINT;
      const field: Field = { name: f.name, number: f.number, kind, repeated, tag: f.number * 8 + wireType, enumNames: kind === 'enum' ? enumNames(typeName!) : undefined };
      // protobufjs's default for an enum field is its enum's first value, which only proto3 makes 0.
      if (field.enumNames && field.enumNames.first !== 0) {
        plain = false;
        break;
      }
      if (kind === 'message') nestedTypes.set(field, typeName!);
      fields.push(field);
    }
    if (!plain) continue;
    const byNumber: (Field | undefined)[] = [];
    for (const field of fields) byNumber[field.number] = field;
    codecs.set(name, {
      name,
      byNumber,
      fields: [...fields].sort((a, b) => a.number - b.number),
      // toObject sorts the fields by number (whatever order they are declared in).
      keyOrder: [...fields].sort((a, b) => Number(b.repeated) - Number(a.repeated) || a.number - b.number),
      // Until compile() below.
      decode: () => undefined,
      encode: () => undefined,
      writeField: () => false,
    });
  }
  // A message is plain only if the messages it holds are; drop the others until nothing changes.
  const dropHolders = () => {
    for (let changed = true; changed; ) {
      changed = false;
      for (const [name, codec] of codecs) {
        if (codec.fields.some((field) => field.kind === 'message' && !codecs.has(nestedTypes.get(field)!))) {
          codecs.delete(name);
          changed = true;
        }
      }
    }
  };
  dropHolders();
  // protobufjs refuses messages nested more than util.recursionLimit (100) deep; these codecs recurse
  // without a limit. So a message that may hold one of its own kind (at any depth), or nests deeper
  // than MAX_NESTING, is left to protobufjs, and so is every message that holds one.
  const depths = new Map<string, number>();
  const depthOf = (name: string, visiting: Set<string>): number => {
    const known = depths.get(name);
    if (known !== undefined) return known;
    if (visiting.has(name)) return Infinity;
    visiting.add(name);
    let depth = 0;
    for (const field of codecs.get(name)!.fields) if (field.kind === 'message') depth = Math.max(depth, 1 + depthOf(nestedTypes.get(field)!, visiting));
    visiting.delete(name);
    depths.set(name, depth);
    return depth;
  };
  for (const name of [...codecs.keys()]) if (depthOf(name, new Set()) > MAX_NESTING) codecs.delete(name);
  // The descriptors proto-loader keeps are written as proto3 whatever the file says: a proto2 required
  // field shows as optional. So each codec must decode no bytes as protobufjs does (the defaults, their
  // key order, or its refusal of a message without its required fields), or it goes, with its holders.
  for (;;) {
    for (const codec of codecs.values()) for (const field of codec.fields) if (field.kind === 'message') field.message = codecs.get(nestedTypes.get(field)!);
    compile([...codecs.values()]);
    const before = codecs.size;
    for (const [name, codec] of codecs) if (json(() => codec.decode(Buffer.alloc(0))) !== json(() => (definition[name] as { deserialize: (bytes: Buffer) => unknown }).deserialize(Buffer.alloc(0)))) codecs.delete(name);
    if (codecs.size === before) break;
    dropHolders();
  }
  return codecs;
}

// ---- Each message's decoder and encoder, generated from its fields (as protobufjs generates its own),
// so that each is straight-line code for one shape of object: an interpreter over the fields, tried
// first, cost 15 µs of the daemon's time per AllocateArray + FreeArray, this 2-3 µs.

const MAX_UINT32 = 0xffffffff;
const MAX_INT32 = 0x7fffffff;

/** The default toObject gives a field (loader option `defaults`), as source. */
function defaultSource(field: Field, enumIndex: number): string {
  if (field.repeated) return '[]';
  switch (field.kind) {
    case 'string':
      return "''";
    case 'bool':
      return 'false';
    case 'enum':
      return `E[${enumIndex}].byNumber.get(0) ?? 0`;
    case 'message':
      return 'null';
    default:
      return '0';
  }
}

/**
 * The decoder's case for one field: reads its value at `r` into `f<i>`, or returns undefined (bytes
 * protobufjs must read). A repeated field takes both its packed and its one-value form.
 */
function decodeCase(field: Field, i: number, enumIndex: number, messageIndex: number): string {
  const decline = 'return undefined;';
  if (field.repeated) {
    return `case ${field.number * 8 + VARINT}: x = r.varint(); if (x < 0) ${decline} f${i}.push(x); break;
      case ${field.number * 8 + LENGTH_DELIMITED}: if (!readPacked(r, f${i})) ${decline} break;`;
  }
  const read: Record<Kind, string> = {
    string: `l = r.length(); if (l < 0) ${decline} f${i} = r.buffer.toString('utf8', r.pos, (r.pos += l));`,
    // protobufjs reads a bool as a uint32.
    bool: `x = r.uint32(); if (x < 0) ${decline} f${i} = x !== 0;`,
    uint32: `x = r.uint32(); if (x < 0) ${decline} f${i} = x;`,
    int32: `x = r.uint32(); if (x < 0 || x > ${MAX_INT32}) ${decline} f${i} = x;`,
    enum: `x = r.uint32(); if (x < 0 || x > ${MAX_INT32}) ${decline} f${i} = E[${enumIndex}].byNumber.get(x) ?? x;`,
    int64: `x = r.varint(); if (x < 0) ${decline} f${i} = x;`,
    uint64: `x = r.varint(); if (x < 0) ${decline} f${i} = x;`,
    // A message field seen twice: protobufjs keeps the last one, as here.
    message: `l = r.length(); if (l < 0) ${decline} x = decode${messageIndex}(new Reader(r.buffer, r.pos, r.pos + l)); if (x === undefined) ${decline} f${i} = x; r.pos += l;`,
  };
  return `case ${field.tag}: ${read[field.kind]} break;`;
}

/** The encoder's measure of one field: adds its bytes to `n`, or returns -1 (a value protobufjs must encode). */
function measureField(field: Field, enumIndex: number, messageIndex: number): string {
  const tagBytes = varintLength(field.tag);
  const decline = 'return -1;';
  const add = (bytes: string) => `n += ${tagBytes} + ${bytes};`;
  const measure: Record<Kind, string> = {
    // A lone surrogate: protobufjs writes it as 3 bytes of its own (short strings), Buffer as U+FFFD.
    string: `if (typeof v !== 'string' || !v.isWellFormed()) ${decline} if (v !== '') { x = Buffer.byteLength(v); ${add('varintLength(x) + x')} }`,
    bool: `if (typeof v !== 'boolean') ${decline} if (v) ${add('1')}`,
    uint32: `if (!isUint(v, ${MAX_UINT32})) ${decline} if (v !== 0) ${add('varintLength(v)')}`,
    int32: `if (!isUint(v, ${MAX_INT32})) ${decline} if (v !== 0) ${add('varintLength(v)')}`,
    enum: `x = typeof v === 'string' ? (E[${enumIndex}].byName.get(v) ?? -1) : isUint(v, ${MAX_INT32}) ? v : -1; if (x < 0) ${decline} if (x !== 0) ${add('varintLength(x)')}`,
    int64: `if (!isUint(v, ${Number.MAX_SAFE_INTEGER})) ${decline} if (v !== 0) ${add('varintLength(v)')}`,
    uint64: `if (!isUint(v, ${Number.MAX_SAFE_INTEGER})) ${decline} if (v !== 0) ${add('varintLength(v)')}`,
    message: `x = measure${messageIndex}(v); if (x < 0) ${decline} ${add('varintLength(x) + x')}`,
  };
  const body = field.repeated
    ? `if (!Array.isArray(v)) ${decline} if (v.length > 0) { x = 0; for (k = 0; k < v.length; k++) { if (!isUint(v[k], ${Number.MAX_SAFE_INTEGER})) ${decline} x += varintLength(v[k]); } ${add('varintLength(x) + x')} }`
    : measure[field.kind];
  // fromObject leaves out what is null or undefined.
  return `v = o[${JSON.stringify(field.name)}]; if (v !== undefined && v !== null) { ${body} }`;
}

/** The encoder's write of one field, of a value its measure accepted. */
function writeField(field: Field, enumIndex: number, messageIndex: number): string {
  const number = field.number;
  const write: Record<Kind, string> = {
    string: `w.string(${number}, v);`,
    bool: `w.number(${number}, v ? 1 : 0);`,
    uint32: `w.number(${number}, v);`,
    int32: `w.number(${number}, v);`,
    enum: `w.number(${number}, typeof v === 'string' ? E[${enumIndex}].byName.get(v) : v);`,
    int64: `w.number(${number}, v);`,
    uint64: `w.number(${number}, v);`,
    message: `w.tag(${number}, ${LENGTH_DELIMITED}); w.varint(measure${messageIndex}(v)); write${messageIndex}(v, w);`,
  };
  return `v = o[${JSON.stringify(field.name)}]; if (v !== undefined && v !== null) { ${field.repeated ? `w.packed(${number}, v);` : write[field.kind]} }`;
}

/** A repeated int64/uint64 field's packed values, added to `into`; false for bytes these codecs do not take. */
function readPacked(reader: ProtoReader, into: number[]): boolean {
  const length = reader.length();
  if (length < 0) return false;
  const end = reader.pos + length;
  const packed = new ProtoReader(reader.buffer, reader.pos, end);
  while (packed.pos < end) {
    const value = packed.varint();
    if (value < 0) return false;
    into.push(value);
  }
  reader.pos = end;
  return true;
}

const isUint = (value: unknown, max: number): value is number => typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= max;

/** Generates and compiles every message's decode, measure and write functions, in one scope (messages refer to each other). */
function compile(messages: readonly MessageCodec[]): void {
  const index = new Map(messages.map((message, i) => [message, i]));
  const enums: EnumNames[] = [];
  const enumIndex = (field: Field) => (field.enumNames ? enums.indexOf(field.enumNames) : -1);
  for (const message of messages) for (const field of message.fields) if (field.enumNames && !enums.includes(field.enumNames)) enums.push(field.enumNames);
  const source: string[] = [];
  messages.forEach((message, m) => {
    const fieldIndex = new Map(message.keyOrder.map((field, i) => [field, i]));
    const nested = (field: Field) => (field.message ? index.get(field.message)! : -1);
    const cases = message.fields.map((field) => decodeCase(field, fieldIndex.get(field)!, enumIndex(field), nested(field)));
    const known = message.fields.map((field) => `case ${field.number}:`).join(' ');
    source.push(`function decode${m}(r) {
      ${message.keyOrder.map((field, i) => `let f${i} = ${defaultSource(field, enumIndex(field))};`).join(' ')}
      let t, x, l;
      while (r.pos < r.end) {
        t = r.tag();
        switch (t) {
          ${cases.join('\n          ')}
          default:
            if (t < 0) return undefined;
            // A field of this message with another wire type: protobufjs reads it as its type says.
            ${known === '' ? '' : `switch (t >>> 3) { ${known} return undefined; }`}
            if (!r.skip(t & 7)) return undefined;
        }
      }
      return { ${message.keyOrder.map((field, i) => `${JSON.stringify(field.name)}: f${i}`).join(', ')} };
    }
    function measure${m}(o) {
      if (typeof o !== 'object' || o === null || Array.isArray(o)) return -1;
      let n = 0, v, x, k;
      ${message.fields.map((field) => measureField(field, enumIndex(field), nested(field))).join('\n      ')}
      return n;
    }
    function write${m}(o, w) {
      let v;
      ${message.fields.map((field) => writeField(field, enumIndex(field), nested(field))).join('\n      ')}
    }`);
  });
  source.push(`return [${messages.map((_, m) => `[decode${m}, measure${m}, write${m}]`).join(', ')}];`);
  // The source is made of this file's templates, field numbers and JSON-quoted field names only.
  const factory = new Function('E', 'Reader', 'Buffer', 'readPacked', 'isUint', 'varintLength', source.join('\n')) as (...args: unknown[]) => [MessageDecoder, (value: unknown) => number, (value: unknown, writer: ProtoWriter) => void][];
  const compiled = factory(enums, ProtoReader, Buffer, readPacked, isUint, varintLength);
  messages.forEach((message, m) => {
    const [decode, measure, write] = compiled[m];
    message.decode = (bytes) => decode(new ProtoReader(bytes));
    message.encode = (value) => {
      const bytes = measure(value);
      if (bytes < 0) return undefined;
      // ProtoWriter makes room for a whole 10-byte varint before each: with that much spare, it never grows.
      const writer = new ProtoWriter(Buffer.allocUnsafe(bytes + 10));
      write(value, writer);
      // A value that changed between the two passes (a getter): protobufjs's, which reads it once.
      return writer.length === bytes ? writer.take() : undefined;
    };
    message.writeField = (field, value, writer) => {
      const bytes = measure(value);
      if (bytes < 0) return false;
      const start = writer.length;
      writer.tag(field, LENGTH_DELIMITED);
      writer.varint(bytes);
      const bodyStart = writer.length;
      write(value, writer);
      if (writer.length - bodyStart === bytes) return true;
      writer.length = start;
      return false;
    };
  });
}

type MessageDecoder = (reader: ProtoReader) => Record<string, unknown> | undefined;

/** A codec first, protobufjs's where it declines. */
function preferring<T, R>(fast: (value: T) => R | undefined, generic: (value: T) => R): (value: T) => R {
  return (value) => fast(value) ?? generic(value);
}

/**
 * Puts the plain-message codecs in front of protobufjs's for every method of `definition` whose request
 * or response is a plain message (call before loadPackageDefinition, so that servers and clients made
 * from it use them). Answers the methods and directions that got one, as "Service.Method request".
 */
export function installPlainMessageCodecs(definition: PackageDefinition, codecs = plainMessageCodecs(definition)): string[] {
  const installed: string[] = [];
  // A method names its types by their short names: the type of that name seen from the service, if its fields are those.
  // Two message types of one short name (a.Foo, c.Foo) may have the same fields as the descriptor
  // shows them (type names relative to each, "Bar"), yet hold different types: such a name is left to protobufjs.
  const shortNames = new Map<string, number>();
  for (const name of Object.keys(definition)) {
    if (!isMessageType(definition, name)) continue;
    const short = name.slice(name.lastIndexOf('.') + 1);
    shortNames.set(short, (shortNames.get(short) ?? 0) + 1);
  }
  const codecOf = (serviceName: string, type: MessageTypeDefinition<unknown, unknown>) => {
    const descriptor = type.type as unknown as MessageDescriptor & { name: string };
    if (shortNames.get(descriptor.name) !== 1) return undefined;
    const name = resolveType(definition, serviceName, descriptor.name);
    const found = name === undefined ? undefined : ((definition[name] as MessageTypeDefinition<unknown, unknown>).type as unknown as MessageDescriptor);
    return found && JSON.stringify(found.field) === JSON.stringify(descriptor.field) ? codecs.get(name!) : undefined;
  };
  for (const [serviceName, service] of Object.entries(definition)) {
    if ((service as { format?: string }).format !== undefined) continue;
    for (const [methodName, method] of Object.entries(service as Record<string, MethodDefinition<unknown, unknown>>)) {
      const request = codecOf(serviceName, method.requestType);
      const response = codecOf(serviceName, method.responseType);
      if (request) {
        method.requestSerialize = preferring(request.encode, method.requestSerialize);
        method.requestDeserialize = preferring(request.decode, method.requestDeserialize);
        installed.push(`${serviceName}.${methodName} request`);
      }
      if (response) {
        method.responseSerialize = preferring(response.encode, method.responseSerialize);
        method.responseDeserialize = preferring(response.decode, method.responseDeserialize);
        installed.push(`${serviceName}.${methodName} response`);
      }
    }
  }
  return installed;
}
