/**
 * Checks a request's field names and enum names before the typed client sends it. protobufjs drops a
 * field it does not know and turns an enum name it does not know into the enum's 0 value, both without
 * a word: `createWorkspace('w', { learningPolicy: 'NONE' })` (the camelCase the rest of the typed
 * client takes) created a workspace with every policy at its default, and `dataType: 'FLOAT32'` from
 * plain JS reached the daemon as DATA_TYPE_UNSPECIFIED, whose refusal named a value the caller never
 * sent. Now such a call is refused here, INVALID_ARGUMENT in the daemon's words, naming the field (its
 * proto name, with the path to it in a nested message) and the value given.
 *
 * So is a scalar of the wrong kind, which protobufjs turned into another value the daemon could not
 * tell from a real one: `initial_size: '4M'` (the size suffixes of the flags) went out as 4 bytes
 * (Long.fromString reads the digits it can), `shape: [16.5]` as 16, `ttl_seconds: '1m'` as 0 (the
 * default TTL), `workspace_id: info` (the WorkspaceInfo, not its id) as "[object Object]", a bool given
 * "false" as true; `shape: 16` (no array) failed as INTERNAL. Integers take a safe integer Number, a
 * decimal string or a Long within the field's range; the daemon checks what they mean.
 */
import type { Client, ServiceDefinition } from '@grpc/grpc-js';
import type { PackageDefinition } from '@grpc/proto-loader';
import { resolveType, type FieldDescriptor } from '../service/plain-message-codecs';

/** What is wrong with a request, in invalidArgument's terms (errors.ts). */
export interface RequestProblem {
  /** The field's name, with its path in nested messages (`config.allocation_policy`). */
  field: string;
  expected: string;
  received: unknown;
}

type Check = (request: unknown, path: string) => RequestProblem | undefined;

interface MessageType {
  field?: FieldDescriptor[];
  oneofDecl?: Array<{ name: string }>;
  /** Map fields' entry types among them (proto-loader names one by the field's type name, `Labels`). */
  nestedType?: Array<MessageType & { name: string; options?: { mapEntry?: boolean } | null }>;
}

/** `learningPolicy` → `learning_policy`. */
function snakeCase(name: string): string {
  return name.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
}

/** A generated test that a message is certainly fine (see fastCheckOf); false means "ask checkOf". */
type FastCheck = (request: unknown) => boolean;

export class RequestChecks {
  private readonly checks = new Map<string, Check>();
  private readonly fastChecks = new Map<string, FastCheck>();

  constructor(readonly definition: PackageDefinition) {}

  /** The first problem of `request` (a message of type `typeName`, full name): a field its type lacks, or an enum name its enum lacks. */
  problemOf(typeName: string, request: unknown): RequestProblem | undefined {
    return this.problemsOf(typeName)(request);
  }

  /** problemOf for one message type, with its fast check looked up once (checkRequestsBeforeSending's stubs). */
  problemsOf(typeName: string): (request: unknown) => RequestProblem | undefined {
    let fast: FastCheck | undefined;
    return (request) => ((fast ??= this.fastCheckOf(typeName))(request) ? undefined : this.checkOf(typeName)(request, ''));
  }

  /**
   * A function generated for one message type that says true only for a message checkOf would find
   * nothing wrong in, and only for the usual values: known keys, strings, booleans, numbers (safe
   * integers within an integer field's range), known enum names, arrays of those, nested messages of
   * the same kind. Anything else (a decimal string or a Long for an integer, a wrong value) is false
   * and goes to checkOf, which says what is wrong, if anything. Each call of the typed client checks
   * its request: interpreted (checkOf's field closures, computed property names) that cost about 15 µs
   * a call in B1 (its loads megamorphic, its data out of cache between calls), as plain-message-codecs
   * found for its codecs; generated, with a constant name at each load, it costs next to nothing.
   */
  private fastCheckOf(typeName: string): FastCheck {
    let fast = this.fastChecks.get(typeName);
    if (fast) return fast;
    // Placed before it is built (a message may hold its own kind): calls go through `nested`.
    const nested: FastCheck[] = [];
    const enums: Array<ReadonlySet<string>> = [];
    let compiled: FastCheck | undefined;
    fast = (request) => compiled!(request);
    this.fastChecks.set(typeName, fast);
    const { fields, keys } = this.messageType(typeName);
    const source: string[] = [
      'return function (r) {',
      "  if (r === null || typeof r !== 'object' || Array.isArray(r)) return false;",
      '  for (const k in r) {',
      // (A message with no fields has no case: every key is unknown.)
      ...(keys.length > 0 ? [`    switch (k) { ${keys.map((key) => `case ${JSON.stringify(key)}: `).join('')}continue; }`] : []),
      '    if (r[k] !== undefined) return false;',
      '  }',
      '  let v;',
    ];
    for (const field of fields) {
      const item = this.fastItemTest(typeName, field, nested, enums);
      // A field type it does not know: every message of this type goes to checkOf.
      if (item === undefined) {
        compiled = () => false;
        return fast;
      }
      source.push(`  v = r[${JSON.stringify(field.name)}];`);
      if (field.label === 'LABEL_REPEATED') {
        source.push('  if (v != null) {', '    if (!Array.isArray(v)) return false;', `    for (let i = 0; i < v.length; i++) { const x = v[i]; if (!(${item})) return false; }`, '  }');
      } else {
        source.push(`  if (v != null) { const x = v; if (!(${item})) return false; }`);
      }
    }
    source.push('  return true;', '};');
    compiled = new Function('nested', 'enums', source.join('\n'))(nested, enums) as FastCheck;
    return fast;
  }

  /** The expression (over `x`) that accepts a usual value of `field`; undefined for a field type it does not know. */
  private fastItemTest(typeName: string, field: FieldDescriptor, nested: FastCheck[], enums: Array<ReadonlySet<string>>): string | undefined {
    const range = SCALAR_CHECKS[field.type]?.numberRange;
    if (range) return `typeof x === 'number' && Number.isSafeInteger(x) && x >= ${range[0]} && x <= ${range[1]}`;
    switch (field.type) {
      case 'TYPE_DOUBLE':
      case 'TYPE_FLOAT':
        return "typeof x === 'number'";
      case 'TYPE_BOOL':
        return "typeof x === 'boolean'";
      case 'TYPE_STRING':
        return "typeof x === 'string'";
      case 'TYPE_BYTES':
        return 'x instanceof Uint8Array';
    }
    const fieldType = field.type === 'TYPE_ENUM' || field.type === 'TYPE_MESSAGE' ? resolveType(this.definition, typeName, field.typeName) : undefined;
    if (fieldType === undefined) return undefined;
    if (field.type === 'TYPE_ENUM') {
      enums.push(new Set(this.enumValues(fieldType)));
      return `typeof x === 'number' || (typeof x === 'string' && enums[${enums.length - 1}].has(x))`;
    }
    nested.push(this.fastCheckOf(fieldType));
    return `nested[${nested.length - 1}](x)`;
  }

  /**
   * A message type's fields and the keys a request of it may hold: its field names and its oneofs'
   * (a message read back, a WorkspaceInfo's config, carries its proto3 optionals' virtual oneofs).
   */
  private messageType(typeName: string): { fields: FieldDescriptor[]; keys: string[] } {
    const type = (this.definition[typeName] as { type?: MessageType } | undefined)?.type ?? {};
    const fields = type.field ?? [];
    return { fields, keys: [...fields.map((field) => field.name), ...(type.oneofDecl ?? []).map((oneof) => oneof.name)] };
  }

  /** The value names of the enum `enumType` (full name). */
  private enumValues(enumType: string): string[] {
    return ((this.definition[enumType] as { type?: { value?: Array<{ name: string }> } }).type?.value ?? []).map((value) => value.name);
  }

  private checkOf(typeName: string): Check {
    let check = this.checks.get(typeName);
    if (check) return check;
    // Placed before it is built, so that a message that holds itself ends the recursion.
    const fieldChecks: Check[] = [];
    const { fields, keys } = this.messageType(typeName);
    const known = new Set(keys);
    const shortName = typeName.slice(typeName.lastIndexOf('.') + 1);
    check = (request, path) => {
      if (request === null || typeof request !== 'object') return undefined;
      for (const key of Object.keys(request)) {
        const value = (request as Record<string, unknown>)[key];
        if (known.has(key) || value === undefined) continue;
        const meant = snakeCase(key);
        const hint = known.has(meant) ? `did you mean ${meant}?` : `its fields: ${fields.map((field) => field.name).join(', ')}`;
        return { field: path + key, expected: `a field of ${shortName}, which has none of that name (${hint})`, received: value };
      }
      for (const fieldCheck of fieldChecks) {
        const found = fieldCheck(request, path);
        if (found) return found;
      }
      return undefined;
    };
    this.checks.set(typeName, check);
    for (const field of fields) {
      const mapCheck = mapCheckOf(this.definition, typeName, field);
      if (mapCheck !== undefined) {
        fieldChecks.push(mapCheck);
        continue;
      }
      const scalar = scalarCheck(field.type);
      if (scalar !== undefined) {
        const repeated = field.label === 'LABEL_REPEATED';
        fieldChecks.push((request, path) => {
          const value = (request as Record<string, unknown>)[field.name];
          if (value === undefined || value === null) return undefined;
          if (repeated && !Array.isArray(value)) return { field: path + field.name, expected: `an array of ${scalar.expected}`, received: value };
          if (!repeated) return scalar.accepts(value) ? undefined : { field: path + field.name, expected: scalar.expected, received: shortened(value) };
          const items = value as unknown[];
          for (let i = 0; i < items.length; i++) {
            if (!scalar.accepts(items[i])) return { field: `${path}${field.name}[${i}]`, expected: scalar.expected, received: shortened(items[i]) };
          }
          return undefined;
        });
        continue;
      }
      const fieldType = field.type === 'TYPE_ENUM' || field.type === 'TYPE_MESSAGE' ? resolveType(this.definition, typeName, field.typeName) : undefined;
      if (fieldType === undefined) continue;
      const repeated = field.label === 'LABEL_REPEATED';
      if (field.type === 'TYPE_ENUM') {
        const values = this.enumValues(fieldType);
        const knownValues = new Set(values);
        const expected = `one of ${values.filter((name) => !name.endsWith('_UNSPECIFIED')).join(', ')}`;
        fieldChecks.push((request, path) => {
          const value = (request as Record<string, unknown>)[field.name];
          for (const item of repeated && Array.isArray(value) ? value : [value]) {
            if (typeof item === 'string' && !knownValues.has(item)) return { field: path + field.name, expected, received: item };
          }
          return undefined;
        });
      } else {
        fieldChecks.push((request, path) => {
          const value = (request as Record<string, unknown>)[field.name];
          const inner = this.checkOf(fieldType);
          for (const item of repeated && Array.isArray(value) ? value : [value]) {
            const found = inner(item, `${path}${field.name}.`);
            if (found) return found;
          }
          return undefined;
        });
      }
    }
    return check;
  }
}

/**
 * The check of a map field of `typeName` whose values are scalars (OpenLeaseRequest.labels, a
 * map<string, string>); undefined for any other field. protobufjs read anything but a plain object
 * without a word: a Map as no entries, an array by its indexes, and a wrong value as its String()
 * (`{ team: null }` as "null", `{ team: {} }` as "[object Object]", an undefined one as "undefined").
 */
function mapCheckOf(definition: PackageDefinition, typeName: string, field: FieldDescriptor): Check | undefined {
  if (field.type !== 'TYPE_MESSAGE' || field.label !== 'LABEL_REPEATED') return undefined;
  const nested = (definition[typeName] as { type?: MessageType } | undefined)?.type?.nestedType ?? [];
  const entry = nested.find((type) => type.name === field.typeName && type.options?.mapEntry);
  const valueField = entry?.field?.find((entryField) => entryField.name === 'value');
  const keyField = entry?.field?.find((entryField) => entryField.name === 'key');
  const scalar = valueField && scalarCheck(valueField.type);
  if (scalar === undefined || keyField?.type !== 'TYPE_STRING') return undefined;
  const expected = `an object of ${scalar.expected} by key (map<string, ${valueField!.type.slice('TYPE_'.length).toLowerCase()}>)`;
  return (request, path) => {
    const value = (request as Record<string, unknown>)[field.name];
    if (value === undefined || value === null) return undefined;
    const prototype = typeof value === 'object' ? Object.getPrototypeOf(value) : undefined;
    if (Array.isArray(value) || (prototype !== Object.prototype && prototype !== null)) return { field: path + field.name, expected, received: value };
    for (const [key, item] of Object.entries(value as object)) {
      if (!scalar.accepts(item)) return { field: `${path}${field.name}[${JSON.stringify(key)}]`, expected: scalar.expected, received: shortened(item) };
    }
    return undefined;
  };
}

interface ScalarCheck {
  expected: string;
  accepts: (value: unknown) => boolean;
  /** An integer type's bounds for Numbers: its own, within ±(2^53 - 1) (a safe integer is always within 64 bits). */
  numberRange?: readonly [number, number];
}

/** An integer field's check: a safe integer Number, a decimal string or a Long (protobufjs's own), within [min, max]. */
function integerCheck(min: bigint, max: bigint, kind: string): ScalarCheck {
  const inRange = (value: bigint) => value >= min && value <= max;
  // Numbers compared as numbers (every call of the typed client checks its integers: no BigInt made for them).
  const [minNumber, maxNumber] = [Math.max(Number(min), -Number.MAX_SAFE_INTEGER), Math.min(Number(max), Number.MAX_SAFE_INTEGER)];
  return {
    expected: `${kind} (an integer from ${min} to ${max}: a whole Number, or a decimal string for 64-bit values past 2^53)`,
    numberRange: [minNumber, maxNumber],
    accepts: (value) => {
      if (typeof value === 'number') return Number.isSafeInteger(value) && value >= minNumber && value <= maxNumber;
      if (typeof value === 'string') return /^-?[0-9]+$/.test(value) && inRange(BigInt(value));
      if (typeof value === 'bigint') return false; // protobufjs cannot encode a BigInt
      if (value !== null && typeof value === 'object' && typeof (value as { low?: unknown }).low === 'number' && typeof (value as { high?: unknown }).high === 'number') {
        const long = value as { low: number; high: number; unsigned?: boolean };
        const big = (BigInt(long.high >>> 0) << 32n) | BigInt(long.low >>> 0);
        return inRange(long.unsigned ? big : BigInt.asIntN(64, big));
      }
      return false;
    },
  };
}

const SCALAR_CHECKS: Record<string, ScalarCheck> = {
  TYPE_INT32: integerCheck(-(2n ** 31n), 2n ** 31n - 1n, 'an int32'),
  TYPE_SINT32: integerCheck(-(2n ** 31n), 2n ** 31n - 1n, 'an sint32'),
  TYPE_SFIXED32: integerCheck(-(2n ** 31n), 2n ** 31n - 1n, 'an sfixed32'),
  TYPE_UINT32: integerCheck(0n, 2n ** 32n - 1n, 'a uint32'),
  TYPE_FIXED32: integerCheck(0n, 2n ** 32n - 1n, 'a fixed32'),
  TYPE_INT64: integerCheck(-(2n ** 63n), 2n ** 63n - 1n, 'an int64'),
  TYPE_SINT64: integerCheck(-(2n ** 63n), 2n ** 63n - 1n, 'an sint64'),
  TYPE_SFIXED64: integerCheck(-(2n ** 63n), 2n ** 63n - 1n, 'an sfixed64'),
  TYPE_UINT64: integerCheck(0n, 2n ** 64n - 1n, 'a uint64'),
  TYPE_FIXED64: integerCheck(0n, 2n ** 64n - 1n, 'a fixed64'),
  TYPE_DOUBLE: { expected: 'a Number', accepts: (value) => typeof value === 'number' },
  TYPE_FLOAT: { expected: 'a Number', accepts: (value) => typeof value === 'number' },
  TYPE_BOOL: { expected: 'true or false', accepts: (value) => typeof value === 'boolean' },
  TYPE_STRING: { expected: 'a string', accepts: (value) => typeof value === 'string' },
  TYPE_BYTES: { expected: 'a Buffer or Uint8Array', accepts: (value) => value instanceof Uint8Array || typeof value === 'string' },
};

/**
 * A wrong scalar as the refusal shows it: an object (a WorkspaceInfo or ArrayInfo passed for its id) by
 * its first keys, not spelled out in full.
 */
export function shortened(value: unknown): unknown {
  if (value === null || typeof value !== 'object' || value instanceof Uint8Array) return value;
  const keys = Object.keys(value);
  const text = `an object {${keys.slice(0, 3).join(', ')}${keys.length > 3 ? ', …' : ''}}`;
  return { toString: () => text };
}

/** The check of a scalar field's values, by descriptor type; undefined for enums and messages. */
function scalarCheck(type: string): ScalarCheck | undefined {
  return SCALAR_CHECKS[type];
}

/**
 * Makes each call of `client` (a stub of `service`) whose request is one message check that message
 * first, and throw `refuse(problem)` (sending nothing) when it has one.
 */
export function checkRequestsBeforeSending(client: Client, service: ServiceDefinition, checks: RequestChecks, refuse: (problem: RequestProblem) => Error): void {
  for (const [name, method] of Object.entries(service)) {
    if (method.requestStream) continue;
    const scope = method.path.slice(1, method.path.lastIndexOf('.'));
    const typeName = resolveType(checks.definition, scope, (method as unknown as { requestType: { type: { name: string } } }).requestType.type.name);
    if (typeName === undefined) continue;
    const stub = client as unknown as Record<string, (request: unknown, ...rest: unknown[]) => unknown>;
    const send = stub[name];
    const problemOf = checks.problemsOf(typeName);
    stub[name] = function (this: unknown, request: unknown, ...rest: unknown[]) {
      const problem = problemOf(request);
      if (problem) throw refuse(problem);
      return send.call(this, request, ...rest);
    };
  }
}
