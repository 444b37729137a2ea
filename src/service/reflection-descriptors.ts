/**
 * The file descriptors server reflection serves: one FileDescriptorProto per .proto file, under the
 * file's own name (`tensormem/v1/array.proto`, `google/protobuf/timestamp.proto`,
 * `grpc/health/v1/health.proto`) and with its `dependency` list, as protoc would make them.
 *
 * @grpc/proto-loader's descriptors (what @grpc/reflection is usually given) merge every file of a
 * package into one invented file (`tensormem_v1.proto`, `google_protobuf.proto`) with no dependency
 * list (grpc/grpc-node#2595), so a reflection client that builds a descriptor pool from them (grpcurl,
 * grpc_cli, Python's descriptor_pool, Postman) fails with `"google.protobuf.Timestamp" is not defined`
 * on every service, and `file_by_filename` knows none of the real names. protobufjs also names map
 * entry types in a way protoc refuses and drops the proto3 `optional` flag (both fixed below).
 */
import { dirname, join, relative } from 'node:path';
import type { PackageDefinition } from '@grpc/proto-loader';
import * as protobuf from 'protobufjs';
import { FileDescriptorProto } from 'protobufjs/ext/descriptor';
import { PROTO_DIR, PROTO_FILES } from './proto';

/** grpc.health.v1, as grpc-health-check ships it (served beside tensormem.v1). */
function healthProtoFile(): string {
  return join(dirname(require.resolve('grpc-health-check/package.json')), 'proto', 'health', 'v1', 'health.proto');
}

type Described = protobuf.Type | protobuf.Enum | protobuf.Service;

interface MessageDescriptor {
  name: string;
  field: Array<{ name: string; label?: number; typeName?: string }>;
  nestedType: MessageDescriptor[];
  options?: { mapEntry?: boolean } | null;
}

/** protoc's name for a map field's entry type: the field name in CamelCase, plus "Entry" (`labels` → `LabelsEntry`). */
function mapEntryName(fieldName: string): string {
  return `${fieldName.replace(/(?:^|_)([a-z0-9])/g, (_m, c: string) => c.toUpperCase()).replace(/_/g, '')}Entry`;
}

/**
 * protobufjs names a map field's entry type after the field alone (`Labels`), which protoc, and every
 * descriptor pool built on it, refuses ("map_entry should not be set explicitly"): rename them.
 */
function fixMapEntries(message: MessageDescriptor): void {
  for (const field of message.field) {
    const entry = message.nestedType.find((nested) => nested.options?.mapEntry && nested.name === field.typeName);
    if (!entry || field.label !== 3) continue;
    entry.name = mapEntryName(field.name);
    field.typeName = entry.name;
  }
  for (const nested of message.nestedType) fixMapEntries(nested);
}

/** protobufjs/ext/descriptor adds toDescriptor to Type, Enum and Service (its typings name only some). */
function describe(object: Described): unknown {
  const descriptor = (object as unknown as { toDescriptor(edition: string): unknown }).toDescriptor('proto3');
  if (object instanceof protobuf.Type) {
    fixMapEntries(descriptor as MessageDescriptor);
    markProto3Optional(object, descriptor as MessageDescriptor);
  }
  return descriptor;
}

/**
 * protobufjs writes a proto3 `optional` field's flag under a key its own FieldDescriptorProto does not
 * encode (`proto3_optional`, not `proto3Optional`), so clients would see a real oneof
 * `_overallocation_limit` where protoc's descriptor has a synthetic one: set it where it encodes.
 */
function markProto3Optional(type: protobuf.Type, descriptor: MessageDescriptor): void {
  for (const field of type.fieldsArray) {
    if (!field.options?.proto3_optional) continue;
    const described = descriptor.field.find((f) => f.name === field.name) as { proto3Optional?: boolean } | undefined;
    if (described) described.proto3Optional = true;
  }
  for (const nested of type.nestedArray) {
    if (nested instanceof protobuf.Type) {
      const nestedDescriptor = descriptor.nestedType.find((n) => n.name === nested.name);
      if (nestedDescriptor) markProto3Optional(nested, nestedDescriptor);
    }
  }
}

/** Types a message (nested ones included) or a service refers to. */
function referencedTypes(object: Described, out: Set<protobuf.ReflectionObject>): void {
  if (object instanceof protobuf.Type) {
    for (const field of object.fieldsArray) if (field.resolvedType) out.add(field.resolvedType);
    for (const nested of object.nestedArray) if (nested instanceof protobuf.Type) referencedTypes(nested, out);
  } else if (object instanceof protobuf.Service) {
    for (const method of object.methodsArray) {
      if (method.resolvedRequestType) out.add(method.resolvedRequestType);
      if (method.resolvedResponseType) out.add(method.resolvedResponseType);
    }
  }
}

/** Loads tensormem.v1 and grpc.health.v1 and returns a definition whose entries carry the real files' descriptors. */
export function reflectionDefinition(): PackageDefinition {
  const healthFile = healthProtoFile();
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => (target.startsWith('google/protobuf/') || target === healthFile ? target : join(PROTO_DIR, target));
  root.loadSync([...PROTO_FILES, healthFile], { keepCase: true });
  root.resolveAll();

  // The name a client knows each file by (protoc's: relative to its include folder).
  const fileName = (object: protobuf.ReflectionObject): string => {
    if (object.filename === healthFile) return 'grpc/health/v1/health.proto';
    if (object.filename) return relative(PROTO_DIR, object.filename).split('\\').join('/');
    // protobufjs's bundled well-known types carry no file name: google/protobuf/<name>.proto.
    if (object.parent?.fullName === '.google.protobuf') return `google/protobuf/${object.name.toLowerCase()}.proto`;
    throw new Error(`reflection: no file for ${object.fullName}`);
  };

  const files = new Map<string, { package: string; objects: Described[] }>();
  const visit = (ns: protobuf.NamespaceBase): void => {
    for (const nested of ns.nestedArray) {
      if (nested instanceof protobuf.Type || nested instanceof protobuf.Enum || nested instanceof protobuf.Service) {
        const name = fileName(nested);
        const entry = files.get(name) ?? { package: ns.fullName.slice(1), objects: [] };
        entry.objects.push(nested);
        files.set(name, entry);
      } else if (nested instanceof protobuf.Namespace) {
        visit(nested);
      }
    }
  };
  visit(root);

  const encoded: Buffer[] = [];
  for (const [name, { package: pkg, objects }] of files) {
    const referenced = new Set<protobuf.ReflectionObject>();
    for (const object of objects) referencedTypes(object, referenced);
    const dependency = [...new Set([...referenced].map(fileName))].filter((file) => file !== name).sort();
    const descriptor = FileDescriptorProto.create({
      name,
      package: pkg,
      dependency,
      syntax: 'proto3',
      messageType: objects.filter((o) => o instanceof protobuf.Type).map(describe),
      enumType: objects.filter((o) => o instanceof protobuf.Enum).map(describe),
      service: objects.filter((o) => o instanceof protobuf.Service).map(describe),
    });
    encoded.push(Buffer.from(FileDescriptorProto.encode(descriptor).finish()));
  }
  // @grpc/reflection reads only the fileDescriptorProtos of the definition's entries.
  return { files: { format: 'Protocol Buffer 3 FileDescriptorProto', type: {}, fileDescriptorProtos: encoded } } as unknown as PackageDefinition;
}
