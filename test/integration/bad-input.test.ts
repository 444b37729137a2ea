/** Each bad input gets its status code, a message naming the field and value, and changes nothing. */
import { randomBytes } from 'node:crypto';
import { Metadata, status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LeaseSession, MemoryInfo, TensormemClient, TensormemClientError } from '../../src/client/tensormem-client';
import { DaemonProcess, startDaemon } from '../helpers/daemon-process';

function accounting(info: MemoryInfo) {
  return {
    deviceUsed: info.devices[0].used_bytes,
    deviceBlocks: info.devices[0].allocation_count,
    hostUsed: info.host!.used_bytes,
    hostBlocks: info.host!.allocation_count,
    tenants: info.tenants.map((t) => [t.tenant, t.used_bytes]),
  };
}

describe('bad input changes nothing', () => {
  let daemon: DaemonProcess;
  let client: TensormemClient;
  let lease: LeaseSession;
  /** The same lease through a session that knows no array's size, so that its writes reach the daemon's own range checks (lease.write refuses a range past a known end before sending). */
  let daemonChecked: LeaseSession;
  let arrayId: string;
  const content = randomBytes(1024);

  beforeAll(async () => {
    daemon = await startDaemon(['--maxbytes', '64M', '--host-maxbytes', '64M', '--max-message-bytes', '2M']);
    client = new TensormemClient(daemon.tcpAddress, { maxMessageBytes: 8 * 1024 * 1024 });
    lease = await client.openLease();
    daemonChecked = new LeaseSession(client, lease.lease);
    arrayId = (await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [1024] })).array_id;
    await lease.write(arrayId, content);
  });

  afterAll(async () => {
    client?.close();
    expect(await daemon?.stop()).toBe(0);
  });

  const cases: Array<[string, () => Promise<unknown>, status, string[]]> = [
    ['an unknown data type', () => lease.allocate({ dataType: 99 as unknown as 'DATA_TYPE_FLOAT32', shape: [4] }), status.INVALID_ARGUMENT, ['data_type', '99']],
    ['DATA_TYPE_UNSPECIFIED', () => lease.allocate({ dataType: 'DATA_TYPE_UNSPECIFIED', shape: [4] }), status.INVALID_ARGUMENT, ['data_type', 'DATA_TYPE_UNSPECIFIED']],
    ['a negative dimension', () => lease.allocate({ dataType: 'DATA_TYPE_FLOAT32', shape: [4, -3] }), status.INVALID_ARGUMENT, ['shape[1]', '-3']],
    ['an overflowing shape', () => lease.allocate({ dataType: 'DATA_TYPE_FLOAT64', shape: [2 ** 30, 2 ** 30, 2 ** 30] }), status.INVALID_ARGUMENT, ['shape', '1073741824']],
    ['an int64 beyond 2^53', () => lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: ['9223372036854775807'] }), status.INVALID_ARGUMENT, ['shape[0]', 'below 2^53', 'past 2^53 (about 9.223e+18)']],
    ['an unknown placement', () => lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [4], placement: 7 as unknown as 'PLACEMENT_DEVICE' }), status.INVALID_ARGUMENT, ['placement', '7']],
    ['a device that does not exist', () => lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [4], device: 3 }), status.INVALID_ARGUMENT, ['device', '3']],
    ['an unknown workspace', () => lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [4], workspaceId: 'ws-nope' }), status.NOT_FOUND, ['ws-nope']],
    ['a read offset past the end', () => lease.read(arrayId, 1025, 1), status.OUT_OF_RANGE, ['offset', '1025', '1024 bytes']],
    ['a read length past the end', () => lease.read(arrayId, 1000, 100), status.OUT_OF_RANGE, ['length', '100 bytes at offset 1000']],
    ['a write chunk past the end', () => daemonChecked.write(arrayId, Buffer.alloc(200, 7), 900), status.OUT_OF_RANGE, ['chunk', '200 bytes at offset 900']],
    ['a write offset past the end', () => daemonChecked.write(arrayId, Buffer.alloc(1, 7), 2048), status.OUT_OF_RANGE, ['header.offset', '2048']],
    ['a 257-character label', () => lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [4], label: 'l'.repeat(257) }), status.INVALID_ARGUMENT, ['label', 'at most 256 characters', '257 characters']],
    ['a 257-character request_id', () => lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [4], requestId: 'r'.repeat(257) }), status.INVALID_ARGUMENT, ['request_id', 'at most 256 characters', '257 characters']],
    ['a 257-character label on a duplicate', () => lease.duplicate(arrayId, { label: 'l'.repeat(257) }), status.INVALID_ARGUMENT, ['label', 'at most 256 characters', '257 characters']],
    // Both at once asked for a copy in a workspace and for one outside every workspace: the workspace was dropped without a word.
    ['a workspace_id with detached', () => lease.duplicate(arrayId, { workspaceId: 'ws-nope', detached: true }), status.INVALID_ARGUMENT, ['workspace_id', 'detached', '"ws-nope"']],
    ['an unknown array', () => lease.get('arr-nope'), status.NOT_FOUND, ['arr-nope']],
    // Neither lease_id nor tenant: the refusal named only lease_id, as if a tenant were not the other way.
    ['an EvictLease with neither lease_id nor tenant', () => client.evictLease(''), status.INVALID_ARGUMENT, ['lease_id', 'or a tenant in tenant (exactly one of the two)']],
    // Quoted whole, the id went into the trailers twice over, past what the client takes: the call hung.
    ['a 200,000-character array id', () => lease.get('a'.repeat(200_000)), status.NOT_FOUND, [`array "${'a'.repeat(64)}"… (200000 characters) not found`]],
    ['an empty array id', () => lease.free(''), status.INVALID_ARGUMENT, ['array_id']],
    ['an oversize message', () => daemonChecked.write(arrayId, Buffer.alloc(3 * 1024 * 1024), 0, 3 * 1024 * 1024), status.RESOURCE_EXHAUSTED, []],
    ['a TTL out of range', () => client.openLease({ ttlSeconds: 10 ** 9 }), status.INVALID_ARGUMENT, ['ttl_seconds', '1000000000']],
    ['65 lease labels', () => client.openLease({ labels: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v'])) }), status.INVALID_ARGUMENT, ['labels', 'at most 64 labels', '65 labels']],
    ['a 64-character label key', () => client.openLease({ labels: { ['k'.repeat(64)]: 'v' } }), status.INVALID_ARGUMENT, ['labels', 'keys of 1 to 63 characters', 'a key of 64 characters']],
    ['an empty label key', () => client.openLease({ labels: { '': 'v' } }), status.INVALID_ARGUMENT, ['labels', 'a key of 0 characters']],
    ['a 257-character label value', () => client.openLease({ labels: { job: 'v'.repeat(257) } }), status.INVALID_ARGUMENT, ['labels["job"]', 'at most 256 characters', '257 characters']],
    ['a 1 MiB label value', () => client.openLease({ labels: { job: 'v'.repeat(1024 * 1024) } }), status.INVALID_ARGUMENT, ['labels["job"]', '1048576 characters']],
  ];

  for (const [name, attempt, code, mentions] of cases) {
    it(`${name}: ${status[code]}`, async () => {
      const before = accounting(await client.memoryInfo());
      const error = await attempt().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(TensormemClientError);
      const failure = error as TensormemClientError;
      expect(failure.code, failure.message).toBe(code);
      for (const mention of mentions) expect(failure.details).toContain(mention);
      expect(accounting(await client.memoryInfo())).toEqual(before);
      expect((await lease.read(arrayId)).equals(content)).toBe(true);
    });
  }

  it('opens no lease for labels over the limits, and opens one at the limits', async () => {
    const before = (await client.listLeases()).length;
    const over = await client.openLease({ labels: { a: 'v'.repeat(257) } }).then(() => undefined, (e: unknown) => e);
    expect(over).toBeInstanceOf(TensormemClientError);
    expect((await client.listLeases()).length).toBe(before);
    const labels = Object.fromEntries(Array.from({ length: 64 }, (_, i) => [`${i}`.padStart(63, 'k'), 'v'.repeat(256)]));
    const atLimit = await client.openLease({ labels });
    expect((await client.listLeases()).find((entry) => entry.lease_id === atLimit.leaseId)?.labels).toEqual(labels);
    await atLimit.close();
  });

  it('names a uint64 or int64 past 2^53 as such, never as the rounded number it arrives as', async () => {
    // A client of another language sends these exactly; they arrive as Numbers, rounded (2^64 - 1 as 18446744073709552000).
    const before = accounting(await client.memoryInfo());
    const md = client.metadata(lease.token);
    type Failure = { code: number; details: string };
    const read = (request: object) =>
      new Promise<Failure>((resolve) => {
        const stream = client.arrays.ReadArray(request as never, md);
        stream.on('data', () => undefined);
        stream.on('error', (e) => resolve(e as unknown as Failure));
        stream.on('end', () => resolve({ code: status.OK, details: '' }));
      });
    const write = (offset: string) =>
      new Promise<Failure>((resolve) => {
        const stream = client.arrays.WriteArray(md, (e) => resolve((e ?? { code: status.OK, details: '' }) as unknown as Failure));
        stream.write({ header: { array_id: arrayId, offset } } as never);
        stream.write({ chunk: Buffer.alloc(1) });
        stream.end();
      });
    const unary = (method: 'AllocateArray' | 'CreateWorkspace', request: object) =>
      new Promise<Failure>((resolve) => {
        const service = (method === 'AllocateArray' ? client.arrays : client.workspaces) as unknown as Record<string, (r: object, m: Metadata, cb: (e: unknown) => void) => void>;
        service[method].call(method === 'AllocateArray' ? client.arrays : client.workspaces, request, md, (e) => resolve((e ?? { code: status.OK, details: '' }) as Failure));
      });
    const cases: Array<[string, Promise<Failure>, status, string]> = [
      ['ReadArray offset 2^64 - 1', read({ array_id: arrayId, offset: '18446744073709551615', length: 1 }), status.OUT_OF_RANGE, 'offset about 1.845e+19 (past 2^53) is past the end'],
      ['ReadArray length 2^53 + 1', read({ array_id: arrayId, offset: 0, length: '9007199254740993' }), status.OUT_OF_RANGE, 'about 9.007e+15 (past 2^53) bytes at offset 0'],
      ['WriteArray offset 2^63', write('9223372036854775808'), status.OUT_OF_RANGE, 'offset about 9.223e+18 (past 2^53) is past the end'],
      ['shape -2^63', unary('AllocateArray', { lease_id: lease.leaseId, data_type: 'DATA_TYPE_UINT8', shape: ['-9223372036854775808'] }), status.INVALID_ARGUMENT, 'shape[0] but received a value about -9.223e+18 (past -2^53)'],
      ['initial_size 2^53 + 1', unary('CreateWorkspace', { lease_id: lease.leaseId, name: 'w', config: { initial_size: '9007199254740993' } }), status.INVALID_ARGUMENT, 'config.initial_size but received a value about 9.007e+15 (past 2^53)'],
    ];
    for (const [name, attempt, code, mention] of cases) {
      const failure = await attempt;
      expect(failure.code, name).toBe(code);
      expect(failure.details, name).toContain(mention);
      expect(failure.details, name).not.toMatch(/18446744073709552000|9007199254740992|9223372036854776000/);
    }
    expect(accounting(await client.memoryInfo())).toEqual(before);
    expect((await lease.read(arrayId)).equals(content)).toBe(true);
  });

  it('rejects a missing or wrong token with UNAUTHENTICATED', async () => {
    const before = accounting(await client.memoryInfo());
    const forged = new LeaseSession(client, { ...lease.lease, token: 'not-a-token' });
    for (const attempt of [forged.get(arrayId), forged.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [4] }), forged.close()]) {
      const error = (await attempt.then(() => undefined, (e: unknown) => e)) as TensormemClientError;
      expect(error.code).toBe(status.UNAUTHENTICATED);
      expect(error.details).toMatch(/^unknown lease token \(this daemon has run since \d{4}-\d\d-\d\dT[\d:.]+Z, and a lease ends with the daemon that granted it: after a restart, open a new one\)$/);
    }
    const missing = await new Promise<{ code: number; details: string }>((resolve) =>
      client.arrays.GetArray({ array_id: arrayId }, new Metadata(), (e) => resolve(e as unknown as { code: number; details: string })),
    );
    expect(missing.code).toBe(status.UNAUTHENTICATED);
    expect(missing.details).toBe('missing lease token: send "authorization: Bearer <token>" (the token OpenLease returned; tensormemctl: --token or $TENSORMEM_TOKEN)');
    expect(accounting(await client.memoryInfo())).toEqual(before);
  });
});
