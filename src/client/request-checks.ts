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
}

/** `learningPolicy` → `learning_policy`. */
function snakeCase(name: string): string {
  return name.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
}

export class RequestChecks {
  private readonly checks = new Map<string, Check>();

  constructor(readonly definition: PackageDefinition) {}

  /** The first problem of `request` (a message of type `typeName`, full name): a field its type lacks, or an enum name its enum lacks. */
  problemOf(typeName: string, request: unknown): RequestProblem | undefined {
    return this.checkOf(typeName)(request, '');
  }

  private checkOf(typeName: string): Check {
    let check = this.checks.get(typeName);
    if (check) return check;
    // Placed before it is built, so that a message that holds itself ends the recursion.
    const fieldChecks: Check[] = [];
    const type = (this.definition[typeName] as { type?: MessageType } | undefined)?.type ?? {};
    const fields = type.field ?? [];
    // Oneof names too: a message read back (a WorkspaceInfo's config) carries its proto3 optionals' virtual oneofs.
    const known = new Set([...fields.map((field) => field.name), ...(type.oneofDecl ?? []).map((oneof) => oneof.name)]);
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
      const scalar = scalarCheck(field.type);
      if (scalar !== undefined) {
        const repeated = field.label === 'LABEL_REPEATED';
        fieldChecks.push((request, path) => {
          const value = (request as Record<string, unknown>)[field.name];
          if (value === undefined || value === null) return undefined;
          if (repeated && !Array.isArray(value)) return { field: path + field.name, expected: `an array of ${scalar.expected}`, received: value };
          const items = repeated ? (value as unknown[]) : [value];
          for (let i = 0; i < items.length; i++) {
            if (!scalar.accepts(items[i])) return { field: repeated ? `${path}${field.name}[${i}]` : path + field.name, expected: scalar.expected, received: shortened(items[i]) };
          }
          return undefined;
        });
        continue;
      }
      const fieldType = field.type === 'TYPE_ENUM' || field.type === 'TYPE_MESSAGE' ? resolveType(this.definition, typeName, field.typeName) : undefined;
      if (fieldType === undefined) continue;
      const repeated = field.label === 'LABEL_REPEATED';
      if (field.type === 'TYPE_ENUM') {
        const values = ((this.definition[fieldType] as { type?: { value?: Array<{ name: string }> } }).type?.value ?? []).map((value) => value.name);
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

interface ScalarCheck {
  expected: string;
  accepts: (value: unknown) => boolean;
}

/** An integer field's check: a safe integer Number, a decimal string or a Long (protobufjs's own), within [min, max]. */
function integerCheck(min: bigint, max: bigint, kind: string): ScalarCheck {
  const inRange = (value: bigint) => value >= min && value <= max;
  return {
    expected: `${kind} (an integer from ${min} to ${max}: a whole Number, or a decimal string for 64-bit values past 2^53)`,
    accepts: (value) => {
      if (typeof value === 'number') return Number.isSafeInteger(value) && inRange(BigInt(value));
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
    stub[name] = function (this: unknown, request: unknown, ...rest: unknown[]) {
      const problem = checks.problemOf(typeName, request);
      if (problem) throw refuse(problem);
      return send.call(this, request, ...rest);
    };
  }
}
