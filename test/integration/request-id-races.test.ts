/**
 * AllocateArray retries with one request_id while the first call is still under way (a client that gave
 * up on a call and retried it). A retry must end as one arriving after the first call ended would:
 * before, a retry waiting for memory failed CANCELLED when the first call's client went away, and two
 * retries waiting while the first's array went out of scope allocated two arrays for one request_id.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TensormemClient } from '../../src/client/tensormem-client';
import { DaemonProcess, startDaemon } from '../helpers/daemon-process';

const MiB = 1024 * 1024;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('request_id retries', () => {
  let daemon: DaemonProcess;
  let client: TensormemClient;

  beforeAll(async () => {
    daemon = await startDaemon(['--maxbytes', '1G', '--pool-chunk', '64M', '--scrub', 'off', '--async-copy-threshold', '64K']);
    client = new TensormemClient(daemon.tcpAddress, { dataPlane: false });
  });

  afterAll(async () => {
    client?.close();
    expect(await daemon?.stop()).toBe(0);
  });

  it('a retry waiting for memory is not ended by the first call giving up', async () => {
    const lease = await client.openLease();
    const big = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [1024 * MiB - 8 * MiB] });
    const t0 = Date.now();
    // The first call's client gives up after 300 ms (its deadline); the retry comes before that.
    const first = lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [16 * MiB], requestId: 'r1', waitForMemory: true, deadlineMs: 300 });
    await sleep(50);
    const retry = lease
      .allocate({ dataType: 'DATA_TYPE_UINT8', shape: [16 * MiB], requestId: 'r1', waitForMemory: true, deadlineMs: 5000 })
      .then((array) => `ok ${array.byte_size}`, (error: Error) => `${Date.now() - t0} ms: ${error.message}`);
    const firstOutcome = await first.then(() => 'ok', (error: Error) => error.message);
    await sleep(300);
    await lease.free(big.array_id);
    // The retry's own deadline (5 s) has not passed: it waits on, and gets the memory freed.
    const retryOutcome = await retry;
    expect(firstOutcome).toContain('DEADLINE_EXCEEDED');
    expect(retryOutcome).toBe(`ok ${16 * MiB}`);
    await lease.close();
  });

  it('a retry whose own caller gave up allocates nothing once the first call gives up too', async () => {
    const lease = await client.openLease();
    const big = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [1024 * MiB - 8 * MiB] });
    // The first call gives up after 1 s; the retry, which comes at 50 ms, after 600 ms (first).
    const first = lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [16 * MiB], requestId: 'r3', waitForMemory: true, deadlineMs: 1000 });
    await sleep(50);
    const retry = lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [16 * MiB], requestId: 'r3', waitForMemory: true, deadlineMs: 600 });
    const outcomes = await Promise.all([first, retry].map((call) => call.then(() => 'ok', (error: Error) => error.message)));
    expect(outcomes.map((outcome) => outcome.includes('DEADLINE_EXCEEDED'))).toEqual([true, true]);
    // Memory comes free just after both callers are gone: nobody waits for it any more.
    await lease.free(big.array_id);
    await sleep(700);
    expect((await lease.list()).map((array) => array.byte_size)).toEqual([]);
    await lease.close();
  });

  it('two retries waiting on a first call whose array went out of scope share one new array', async () => {
    const lease = await client.openLease();
    const ws = await lease.createWorkspace('w', { initial_size: 300 * MiB, learning_policy: 'LEARNING_POLICY_NONE' } as never);
    await lease.enterWorkspace(ws.workspace_id);
    const ask = () => lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [256 * MiB], workspaceId: ws.workspace_id, zero: true, requestId: 'r2' });
    // The first call zeroes 256 MiB off the event loop; the retries wait for it, and the workspace moves
    // to its next cycle meanwhile, so the first call's array is out of scope when they see it.
    const first = ask();
    await sleep(10);
    const retries = [ask(), ask()];
    await sleep(10);
    await lease.leaveWorkspace(ws.workspace_id);
    await lease.enterWorkspace(ws.workspace_id);
    const firstId = (await first).array_id;
    const ids = (await Promise.all(retries)).map((array) => array.array_id);
    expect(ids[0]).toBe(ids[1]);
    // One new array in the new cycle (or none, on a machine that zeroed 256 MiB before the cycle moved on).
    expect(Number((await lease.getWorkspace(ws.workspace_id)).this_cycle_allocations)).toBe(ids[0] === firstId ? 0 : 256 * MiB);
    await lease.close();
    const info = await client.memoryInfo();
    expect([Number(info.devices[0].used_bytes), Number(info.devices[0].allocation_count)]).toEqual([0, 0]);
  });
});
