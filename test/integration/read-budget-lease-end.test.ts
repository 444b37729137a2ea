/**
 * A tenant's ReadArray budget (src/service/read-budget.ts) and the end of a lease or of the daemon.
 * A stopped reader's streams hold its tenant's budget; when their lease is closed (CloseLease, TTL,
 * EvictLease) they used to go on holding it, with their messages, for as long as the reader's connection
 * lasted, so every other lease of the tenant waited on ReadArray. A stream waiting for the budget now
 * also ends at once when its own lease ends (LEASE_EXPIRED) or the daemon drains (SHUTTING_DOWN), as an
 * allocation waiting for memory does, instead of waiting for the drain's force shutdown.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { status } from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { TensormemClient, TensormemClientError, type LeaseSession } from '../../src/client/tensormem-client';
import { DaemonProcess, startDaemon } from '../helpers/daemon-process';

const MiB = 1024 * 1024;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** src/service/array-service.ts ENDED_READ_GRACE_MS. */
const GRACE_MS = 5000;

/** What a promise settles to: 'pending' while it has not. */
function settled<T>(promise: Promise<T>): { state: () => 'pending' | 'resolved' | 'rejected'; error: () => unknown } {
  let state: 'pending' | 'resolved' | 'rejected' = 'pending';
  let error: unknown;
  promise.then(
    () => (state = 'resolved'),
    (reason) => {
      state = 'rejected';
      error = reason;
    },
  );
  return { state: () => state, error: () => error };
}

describe("a tenant's ReadArray budget when a lease or the daemon ends", () => {
  let daemon: DaemonProcess | undefined;
  let client: TensormemClient | undefined;
  let reader: ChildProcess | undefined;

  afterEach(async () => {
    if (reader && reader.exitCode === null && reader.signalCode === null) {
      const exited = new Promise((resolve) => reader!.once('exit', resolve));
      reader.kill('SIGKILL');
      await exited;
    }
    reader = undefined;
    client?.close();
    client = undefined;
    if (daemon && daemon.child.exitCode === null && daemon.child.signalCode === null) await daemon.stop();
    daemon = undefined;
  });

  /** A daemon (open mode: every lease is tenant "default") whose tenant budget a stopped reader of lease `a` fills. */
  async function stalledTenant(flags: string[] = []): Promise<{ a: LeaseSession; b: LeaseSession; small: string }> {
    // No pings: the stopped reader's connection stays up for as long as the test needs.
    daemon = await startDaemon(['--keepalive-time', 'off', ...flags]);
    client = new TensormemClient(daemon.tcpAddress);
    const a = await client.openLease({ clientName: 'a' });
    const big = await a.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [16 * MiB], placement: 'PLACEMENT_HOST_ONLY' });
    reader = spawn(process.execPath, [join(__dirname, '..', 'helpers', 'stalled-reader.js'), daemon.tcpAddress, a.token, big.array_id, '10'], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => createInterface({ input: reader!.stdout! }).once('line', () => resolve()));
    reader.kill('SIGSTOP');
    await sleep(1000);
    const b = await client.openLease({ clientName: 'b' });
    const small = await b.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [4 * MiB], placement: 'PLACEMENT_HOST_ONLY' });
    return { a, b, small: small.array_id };
  }

  it("gives the budget of a closed lease's stalled streams back: the tenant's other leases read again", async () => {
    const { a, b, small } = await stalledTenant();
    const read = b.readGrpc(small);
    const outcome = settled(read);
    await sleep(1000);
    expect(outcome.state()).toBe('pending'); // the stopped reader holds the tenant's budget
    await a.close();
    // The closed lease's streams send their status or are reset: b's read goes on.
    await expect.poll(outcome.state, { timeout: GRACE_MS + 5000, interval: 100 }).toBe('resolved');
    expect((await read).length).toBe(4 * MiB);
    await b.close();
  }, 30_000);

  it('ends a ReadArray waiting for the budget with LEASE_EXPIRED when its own lease is closed', async () => {
    const { b, small } = await stalledTenant();
    const outcome = settled(b.readGrpc(small));
    await sleep(500);
    expect(outcome.state()).toBe('pending');
    await b.close();
    await expect.poll(outcome.state, { timeout: 2000, interval: 50 }).toBe('rejected');
    const error = outcome.error() as TensormemClientError;
    expect(error.code).toBe(status.UNAUTHENTICATED);
    expect(error.reason).toBe('LEASE_EXPIRED');
  }, 30_000);

  it('ends a ReadArray waiting for the budget with SHUTTING_DOWN when the daemon drains', async () => {
    const { b, small } = await stalledTenant(['--shutdown-timeout', '20s']);
    const outcome = settled(b.readGrpc(small));
    await sleep(500);
    expect(outcome.state()).toBe('pending');
    daemon!.child.kill('SIGTERM');
    // The stopped reader holds the drain for its 20 s; the waiting stream is told at once.
    await expect.poll(outcome.state, { timeout: 3000, interval: 50 }).toBe('rejected');
    const error = outcome.error() as TensormemClientError;
    expect(error.code).toBe(status.UNAVAILABLE);
    expect(error.reason).toBe('SHUTTING_DOWN');
    reader!.kill('SIGKILL');
    expect(await daemon!.exited).toBe(0);
  }, 40_000);
});
