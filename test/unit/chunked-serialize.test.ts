/** chunkedSerializer: a long top-level list is encoded LIST_SLICE elements at a time; the bytes decode as the whole response. */
import type { ServiceDefinition } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { LIST_SLICE, chunkedSerializer } from '../../src/service/chunked-serialize';
import { loadTensormemProto } from '../../src/service/proto';

describe('chunkedSerializer', () => {
  const method = (loadTensormemProto().definition['tensormem.v1.LeaseService'] as unknown as ServiceDefinition).ListLeases;
  const leases = Array.from({ length: 2 * LIST_SLICE + 7 }, (_, i) => ({ lease_id: `lease-${i}`, tenant: 't', client_name: 'c', labels: { job: `j${i}` }, age_seconds: i, device_bytes: i * 4096, array_count: i }));

  it('encodes long lists in slices that decode as the one list, in order', () => {
    const sizes: number[] = [];
    const serialize = chunkedSerializer((value) => {
      sizes.push(((value as { leases?: unknown[] }).leases ?? []).length);
      return method.responseSerialize(value);
    });
    const bytes = serialize({ leases });
    expect(Math.max(...sizes)).toBe(LIST_SLICE);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(leases.length);
    const decoded = method.responseDeserialize(bytes) as { leases: Array<{ lease_id: string; labels: Record<string, string>; device_bytes: string }> };
    expect(decoded.leases.map((lease) => lease.lease_id)).toEqual(leases.map((lease) => lease.lease_id));
    expect(decoded.leases[LIST_SLICE + 3].labels).toEqual({ job: `j${LIST_SLICE + 3}` });
    expect(bytes.length).toBe(method.responseSerialize({ leases }).length);
  });

  it('leaves short lists and other messages to the serializer as they are', () => {
    const serialize = chunkedSerializer(method.responseSerialize);
    const short = { leases: leases.slice(0, 3) };
    expect(serialize(short).equals(method.responseSerialize(short))).toBe(true);
  });
});
