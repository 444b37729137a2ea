/**
 * Checks a request's field names and enum names before the typed client sends it. protobufjs drops a
 * field it does not know and turns an enum name it does not know into the enum's 0 value, both without
 * a word: `createWorkspace('w', { learningPolicy: 'NONE' })` (the camelCase the rest of the typed
 * client takes) created a workspace with every policy at its default, and `dataType: 'FLOAT32'` from
 * plain JS reached the daemon as DATA_TYPE_UNSPECIFIED, whose refusal named a value the caller never
 * sent. Now such a call is refused here, INVALID_ARGUMENT in the daemon's words, naming the field (its
 * proto name, with the path to it in a nested message) and the value given. Numbers are left to the
 * daemon, which checks them.
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
