/**
 * --max-tenant-streams: a tenant's streaming calls, over all its connections and leases, are capped;
 * one more is refused RESOURCE_EXHAUSTED / TOO_MANY_STREAMS with the numbers, while the tenant's unary
 * calls and other tenants' streams go on, and a stream that ends gives its place back.
 */
import { credentials, Metadata, status, type ClientWritableStream, type ServiceError } from '@grpc/grpc-js';
import { describe, expect, it, vi } from 'vitest';
import type { TensormemClientError } from '../../src/client/tensormem-client';
import { errorInfoOf } from '../../src/rpc-status';
import type { WriteArrayRequest } from '../../src/generated/tensormem/v1/WriteArrayRequest';
import { loadTensormemProto } from '../../src/service/proto';
import { DaemonForTests, daemonForTests } from '../helpers/daemon-for-tests';

const LIMIT = 4;

/**
 * Polls the status listener's /metrics until it reports `count` streams open for `tenant`: on a loaded
 * machine the daemon may take its time to hear of a stream that opens or ends (a fixed sleep raced it).
 */
const tenantStreams = (setup: DaemonForTests, tenant: string, count: number) =>
  expect.poll(async () => (await fetch(`${setup.statusBase}/metrics`)).text(), { timeout: 15_000, interval: 50 }).toContain(`tensormem_tenant_streams{tenant="${tenant}"} ${count}`);
/** Waits for the call's refusal to come back. */
const refusal = (entry: { error?: ServiceError }) => vi.waitFor(() => expect(entry.error, 'the refusal of a stream past the cap').toBeDefined(), { timeout: 15_000, interval: 20 });

describe('--max-tenant-streams', () => {
  const setup = daemonForTests(['--max-tenant-streams', String(LIMIT)]);

  it("refuses a tenant's stream past the cap, over all its connections and leases, and counts ended streams out", async () => {
    const { proto } = loadTensormemProto();
    // Each its own connection (grpc-js shares one between channels of the same target and options otherwise).
    const arrays = () => new proto.tensormem.v1.ArrayService(setup.daemon.tcpAddress, credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
    const connections = [arrays(), arrays(), arrays()];
    const memory = new proto.tensormem.v1.MemoryService(setup.daemon.tcpAddress, credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
    const bearer = (token: string) => {
      const metadata = new Metadata();
      metadata.set('authorization', `Bearer ${token}`);
      return metadata;
    };
    const a1 = await setup.client.openLease({ tenant: 'a', clientName: 'a1', ttlSeconds: 60 });
    const a2 = await setup.client.openLease({ tenant: 'a', clientName: 'a2', ttlSeconds: 60 });
    const b = await setup.client.openLease({ tenant: 'b', clientName: 'b', ttlSeconds: 60 });
    const open: Array<{ call: ClientWritableStream<WriteArrayRequest>; error?: ServiceError }> = [];
    /** A WriteArray stream that sends nothing: it stays open in the daemon until cancelled, unless refused. */
    const idleWrite = (connection: number, token: string) => {
      const entry: { call: ClientWritableStream<WriteArrayRequest>; error?: ServiceError } = { call: undefined! };
      entry.call = connections[connection].WriteArray(bearer(token), (error: ServiceError | null) => {
        if (error) entry.error = error;
      });
      open.push(entry);
      return entry;
    };
    try {
      // Two leases of tenant "a", two connections: LIMIT streams in all.
      for (let i = 0; i < LIMIT; i++) idleWrite(i % 2, i < 2 ? a1.token : a2.token);
      await tenantStreams(setup, 'a', LIMIT);
      expect(open.map((entry) => entry.error)).toEqual(new Array(LIMIT).fill(undefined));
      const metrics = await (await fetch(`${setup.statusBase}/metrics`)).text();
      expect(metrics).toContain(`tensormem_tenant_streams{tenant="a"} ${LIMIT}`);
      expect(metrics).toContain('tensormem_tenant_streams{tenant="b"} 0');

      // One more, on a third connection: refused with the numbers.
      const refused = idleWrite(2, a1.token);
      await refusal(refused);
      expect(refused.error?.code).toBe(status.RESOURCE_EXHAUSTED);
      expect(refused.error?.details).toContain(`tenant "a" has ${LIMIT} streams open`);
      expect(refused.error?.details).toContain(`--max-tenant-streams (${LIMIT})`);
      const info = errorInfoOf(refused.error!.metadata);
      expect(info?.reason).toBe('TOO_MANY_STREAMS');
      expect(info?.metadata).toEqual({ tenant: 'a', open_streams: String(LIMIT), max_tenant_streams: String(LIMIT) });
      open.pop();

      // The tenant's unary calls go on; another tenant's streams too.
      const array = await a2.allocate({ shape: [64], dataType: 'DATA_TYPE_UINT8' });
      expect(array.byte_size).toBe(64);
      const watch = memory.WatchMemory({ interval_ms: 100 }, bearer(b.token));
      const firstWatch = await new Promise<unknown>((resolve, reject) => {
        watch.once('data', resolve);
        watch.once('error', reject);
      });
      expect(firstWatch).toHaveProperty('info');
      watch.cancel();

      // A stream that ends gives its place back: a read stream of "a" now goes in.
      open.shift()!.call.cancel();
      await tenantStreams(setup, 'a', LIMIT - 1);
      expect((await a2.readGrpc(array.array_id)).length).toBe(64);

      // Every stream cancelled: the tenant has its whole cap again (nothing was left counted).
      for (const entry of open.splice(0)) entry.call.cancel();
      await tenantStreams(setup, 'a', 0);
      for (let i = 0; i < LIMIT; i++) idleWrite(i % 3, a1.token);
      await tenantStreams(setup, 'a', LIMIT);
      expect(open.map((entry) => entry.error)).toEqual(new Array(LIMIT).fill(undefined));
      const again = idleWrite(2, a2.token);
      await refusal(again);
      expect(errorInfoOf(again.error!.metadata)?.reason).toBe('TOO_MANY_STREAMS');
      open.pop();
      for (const entry of open.splice(0)) entry.call.cancel();
      await tenantStreams(setup, 'a', 0);
    } finally {
      for (const entry of open) entry.call.cancel();
      for (const connection of connections) connection.close();
      memory.close();
      await a1.close();
      await a2.close();
      await b.close();
    }
  });
  it("keeps a lease alive through the typed client's startKeepAlive while its tenant's other streams fill the cap (RenewLease, which is not counted)", async () => {
    const { proto } = loadTensormemProto();
    const memory = new proto.tensormem.v1.MemoryService(setup.daemon.tcpAddress, credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
    const loader = await setup.client.openLease({ tenant: 'c', clientName: 'loader', ttlSeconds: 60 });
    const metadata = new Metadata();
    metadata.set('authorization', `Bearer ${loader.token}`);
    // The tenant's streams fill the cap (another lease's: a data loader's watchers, say).
    const watches = Array.from({ length: LIMIT }, () => {
      const watch = memory.WatchMemory({ interval_ms: 1000 }, metadata);
      watch.on('data', () => {});
      watch.on('error', () => {});
      return watch;
    });
    const trainer = await setup.client.openLease({ tenant: 'c', clientName: 'trainer', ttlSeconds: 2 });
    const errors: TensormemClientError[] = [];
    try {
      await tenantStreams(setup, 'c', LIMIT);
      const array = await trainer.allocate({ shape: [16], dataType: 'DATA_TYPE_UINT8' });
      trainer.startKeepAlive(500, { onError: (error) => errors.push(error) });
      // Past the lease's TTL (2 s) and the sweep (--reclaim-interval 1 s): the KeepAlive stream was refused all along.
      await new Promise((resolve) => setTimeout(resolve, 4000));
      expect(errors.length).toBeGreaterThan(0);
      expect(new Set(errors.map((error) => error.reason))).toEqual(new Set(['TOO_MANY_STREAMS']));
      expect((await trainer.get(array.array_id)).byte_size).toBe(16);
      // A place frees: the KeepAlive stream opens on its next retry and is counted.
      watches.pop()!.cancel();
      // A fixed wait, not a poll: until the daemon has heard of the cancel, the watches alone count LIMIT.
      await new Promise((resolve) => setTimeout(resolve, 1500));
      expect(await (await fetch(`${setup.statusBase}/metrics`)).text()).toContain(`tensormem_tenant_streams{tenant="c"} ${LIMIT}`);
    } finally {
      trainer.stopKeepAlive();
      for (const watch of watches) watch.cancel();
      memory.close();
      await trainer.close().catch(() => undefined);
      await loader.close();
    }
  });
});

describe('--max-tenant-streams 0 (no cap)', () => {
  const setup = daemonForTests(['--max-tenant-streams', '0']);

  it('still reports the streams each tenant has open in tensormem_tenant_streams, and 0 once they end', async () => {
    const { proto } = loadTensormemProto();
    const arrays = new proto.tensormem.v1.ArrayService(setup.daemon.tcpAddress, credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
    const lease = await setup.client.openLease({ tenant: 'uncapped', clientName: 'x', ttlSeconds: 60 });
    const opened = 7;
    // Idle WriteArray streams: each stays open in the daemon until cancelled; none may be refused without a cap.
    const errors: Array<ServiceError | null> = [];
    const calls = Array.from({ length: opened }, () => arrays.WriteArray(setup.client.metadata(lease.token), (error: ServiceError | null) => errors.push(error)));
    try {
      // Polled: on a loaded machine the daemon may take its time to hear of every stream.
      await tenantStreams(setup, 'uncapped', opened);
      expect(errors).toEqual([]);
      for (const call of calls.splice(0)) call.cancel();
      await tenantStreams(setup, 'uncapped', 0);
    } finally {
      for (const call of calls) call.cancel();
      arrays.close();
      await lease.close();
    }
  });
});

describe('tenant_streams_refused in a burst', () => {
  const setup = daemonForTests(['--max-tenant-streams', '1']);

  it('counts every refusal of a burst in the lines, the ones held back in the line at the end of the 10 s', async () => {
    // A rate-limited warning wrote the burst's first refusal at once and held the rest for a later
    // refusal that might never come: 4 refused, a line saying 1.
    const { proto } = loadTensormemProto();
    const arrays = new proto.tensormem.v1.ArrayService(setup.daemon.tcpAddress, credentials.createInsecure());
    const lease = await setup.client.openLease({ tenant: 'a', ttlSeconds: 60 });
    const metadata = new Metadata();
    metadata.set('authorization', `Bearer ${lease.token}`);
    const calls: Array<{ call: ClientWritableStream<WriteArrayRequest>; error?: ServiceError }> = [];
    const idleWrite = () => {
      const entry: { call: ClientWritableStream<WriteArrayRequest>; error?: ServiceError } = { call: undefined! };
      entry.call = arrays.WriteArray(metadata, (error: ServiceError | null) => {
        if (error) entry.error = error;
      });
      calls.push(entry);
      return entry;
    };
    try {
      idleWrite();
      await tenantStreams(setup, 'a', 1);
      const burst = [idleWrite(), idleWrite(), idleWrite(), idleWrite()];
      for (const entry of burst) await refusal(entry);
      const refusedInLines = () => setup.daemon.logs.filter((entry) => entry.event === 'tenant_streams_refused').reduce((sum, entry) => sum + (entry.refused as number), 0);
      await expect.poll(refusedInLines, { timeout: 12_000, interval: 200 }).toBe(burst.length);
    } finally {
      for (const entry of calls) entry.call.cancel();
      arrays.close();
      await lease.close();
    }
  }, 30_000);
});
