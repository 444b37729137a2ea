/**
 * GetMemorySnapshot of many blocks: encoded a slice at a time (service/snapshot-encoder.ts), the same
 * message the generated serializer made, and refused as soon as it would pass --max-message-bytes with
 * a reason and what to do (it was built whole, holding the event loop, then refused by grpc-js).
 */
import { request } from 'node:http';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TensormemClient, TensormemClientError, type LeaseSession } from '../../src/client/tensormem-client';
import { DaemonProcess, startDaemon } from '../helpers/daemon-process';

const ARRAYS = 4000;

function getJson(address: string, path: string): Promise<any> {
  return new Promise((resolve, reject) => {
    request(`http://${address}${path}`, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk) => (body += chunk));
      response.on('end', () => resolve(JSON.parse(body)));
    })
      .on('error', reject)
      .end();
  });
}

describe('GetMemorySnapshot of many blocks', () => {
  let daemon: DaemonProcess;
  let client: TensormemClient;
  let lease: LeaseSession;

  beforeAll(async () => {
    // 4000 blocks are about 380 KB of snapshot: over a 256 KiB message limit.
    daemon = await startDaemon(['--scrub', 'off', '--max-message-bytes', '256K', '--log-level', 'info']);
    client = new TensormemClient(daemon.tcpAddress);
    lease = await client.openLease({ clientName: 'many', tenant: 'téam' });
    let next = 0;
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        while (next < ARRAYS) {
          const i = next++;
          await lease.allocate({ dataType: 'DATA_TYPE_FLOAT32', shape: [1 + (i % 40)], label: i % 3 === 0 ? '' : `label-${i}-✓` });
        }
      }),
    );
  }, 60_000);

  afterAll(async () => {
    client?.close();
    expect(await daemon?.stop()).toBe(0);
  });

  it('is refused past --max-message-bytes with RESOURCE_EXHAUSTED, reason MESSAGE_TOO_LARGE, naming the flag', async () => {
    const error = (await client.memorySnapshot().catch((e: unknown) => e)) as TensormemClientError;
    expect(error).toBeInstanceOf(TensormemClientError);
    expect(error.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(error.reason).toBe('MESSAGE_TOO_LARGE');
    expect(error.details).toMatch(/memory snapshot of \d+ blocks is larger than --max-message-bytes \(262144 bytes/);
  });

  it('under the limit, carries the same pools and blocks as /api/snapshot (the exact snapshot)', async () => {
    const arrays = await lease.list();
    for (let i = 0; i < arrays.length; i += 2) await lease.free(arrays[i].array_id);
    const workspace = await lease.createWorkspace('w');
    await lease.enterWorkspace(workspace.workspace_id);
    await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [100], label: 'in-workspace' });
    const snapshot = await client.memorySnapshot();
    const metricsAddress = daemon.logs.find((entry) => entry.event === 'listening')!.metricsAddress as string;
    const exact = (await getJson(metricsAddress, '/api/snapshot')).snapshot;
    const normal = (pools: any[]) =>
      pools.map((pool) => ({
        pool: pool.pool,
        segments: pool.segments.map((segment: any) => ({
          chunk: Number(segment.chunk),
          bytes: Number(segment.bytes),
          blocks: segment.blocks.map((block: any) => ({ ...block, offset: Number(block.offset), bytes: Number(block.bytes) })),
        })),
      }));
    expect(normal(snapshot.pools)).toEqual(normal(exact.pools));
    const blocks = snapshot.pools.flatMap((pool) => pool.segments.flatMap((segment) => segment.blocks));
    expect(blocks.filter((block) => !block.free && block.array_id !== '').length).toBe(ARRAYS / 2);
    expect(blocks.find((block) => /^label-\d+-✓$/.test(block.label))).toMatchObject({ tenant: 'téam', lease_id: lease.leaseId, free: false });
    // The workspace's own block (its arrays are carved from it).
    expect(blocks.find((block) => block.workspace_id === workspace.workspace_id)).toMatchObject({ tenant: 'téam', lease_id: lease.leaseId });
    expect(snapshot.info!.tenants.map((tenant) => tenant.tenant)).toEqual(['téam']);
    expect(Number(snapshot.taken_at!.seconds)).toBeGreaterThan(0);
  });
});
