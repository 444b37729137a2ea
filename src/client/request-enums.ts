/**
 * Checks the enum fields of a request before the typed client sends it. protobufjs turns an enum name
 * it does not know into the enum's 0 value without a word, so `dataType: 'FLOAT32'` from plain JS
 * reached the daemon as DATA_TYPE_UNSPECIFIED and its refusal named a value the caller never sent
 * ("... for data_type but received "DATA_TYPE_UNSPECIFIED""). Now such a call is refused here,
 * INVALID_ARGUMENT in the daemon's words, naming the field (its proto name, with the path to it in a
 * nested message) and the value given. Numbers are left to the daemon, which checks them.
 */
import type { Client, ServiceDefinition } from '@grpc/grpc-js';
import type { PackageDefinition } from '@grpc/proto-loader';
import { resolveType, type FieldDescriptor } from '../service/plain-message-codecs';

/** An enum-typed string field that names no value of its enum. */
export interface UnknownEnumName {
  /** The field's proto name, with its path in nested messages (`config.allocation_policy`). */
  field: string;
  /** The enum's value names, those ending in _UNSPECIFIED left out. */
  names: string[];
  received: string;
}

type Check = (request: unknown, path: string) => UnknownEnumName | undefined;

export class RequestEnumChecks {
  private readonly checks = new Map<string, Check>();

  constructor(readonly definition: PackageDefinition) {}

  /** The first enum field of `request` (a message of type `typeName`, full name) holding a name its enum lacks. */
  unknownName(typeName: string, request: unknown): UnknownEnumName | undefined {
    return this.checkOf(typeName)(request, '');
  }

  private checkOf(typeName: string): Check {
    let check = this.checks.get(typeName);
    if (check) return check;
    // Placed before it is built, so that a message that holds itself ends the recursion.
    const fieldChecks: Check[] = [];
    check = (request, path) => {
      if (request === null || typeof request !== 'object') return undefined;
      for (const fieldCheck of fieldChecks) {
        const found = fieldCheck(request, path);
        if (found) return found;
      }
      return undefined;
    };
    this.checks.set(typeName, check);
    const fields = (this.definition[typeName] as { type?: { field?: FieldDescriptor[] } } | undefined)?.type?.field ?? [];
    for (const field of fields) {
      const fieldType = field.type === 'TYPE_ENUM' || field.type === 'TYPE_MESSAGE' ? resolveType(this.definition, typeName, field.typeName) : undefined;
      if (fieldType === undefined) continue;
      const repeated = field.label === 'LABEL_REPEATED';
      if (field.type === 'TYPE_ENUM') {
        const values = ((this.definition[fieldType] as { type?: { value?: Array<{ name: string }> } }).type?.value ?? []).map((value) => value.name);
        const known = new Set(values);
        const names = values.filter((name) => !name.endsWith('_UNSPECIFIED'));
        fieldChecks.push((request, path) => {
          const value = (request as Record<string, unknown>)[field.name];
          for (const item of repeated && Array.isArray(value) ? value : [value]) {
            if (typeof item === 'string' && !known.has(item)) return { field: path + field.name, names, received: item };
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
 * Makes each call of `client` (a stub of `service`) whose request is one message check that message's
 * enum names first, and throw `refuse(found)` (sending nothing) when one is unknown.
 */
export function checkEnumsBeforeSending(client: Client, service: ServiceDefinition, checks: RequestEnumChecks, refuse: (found: UnknownEnumName) => Error): void {
  for (const [name, method] of Object.entries(service)) {
    if (method.requestStream) continue;
    const scope = method.path.slice(1, method.path.lastIndexOf('.'));
    const typeName = resolveType(checks.definition, scope, (method as unknown as { requestType: { type: { name: string } } }).requestType.type.name);
    if (typeName === undefined) continue;
    const stub = client as unknown as Record<string, (request: unknown, ...rest: unknown[]) => unknown>;
    const send = stub[name];
    stub[name] = function (this: unknown, request: unknown, ...rest: unknown[]) {
      const found = checks.unknownName(typeName, request);
      if (found) throw refuse(found);
      return send.call(this, request, ...rest);
    };
  }
}
