/**
 * What a client sees of a call that the drain cuts: --shutdown-timeout passing with the call still in
 * flight, or a second SIGTERM. grpc-js's forceShutdown destroyed the sessions with NGHTTP2_CANCEL, and
 * the client got CANCELLED "Call cancelled", the status of a call it cancelled itself (the typed
 * client's close(), an AbortSignal): a trainer whose WriteArray the drain cut could not tell. Such a
 * call now ends with UNAVAILABLE, reason SHUTTING_DOWN, as the drain's other refusals do.
 */
import { Metadata, type ServiceError, status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { clientError } from '../../src/client/client-errors';
import { TensormemClient } from '../../src/client/tensormem-client';
import { startDaemon } from '../helpers/daemon-process';
import { silentProxy } from '../helpers/silent-proxy';

const ARRAY_BYTES = 64 * 1024 * 1024;

/** A daemon with `flags`, a lease with a host array of ARRAY_BYTES, and a WriteArray stream left open (one chunk sent) and a ReadArray stream whose client stops reading after its first 2 MiB. */
async function callsInFlight(flags: string[]) {
  const daemon = await startDaemon(flags);
  const client = new TensormemClient(daemon.tcpAddress, { dataPlane: false });
  const lease = await client.openLease();
  const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [ARRAY_BYTES], placement: 'PLACEMENT_HOST_ONLY' });
  const metadata = new Metadata();
  metadata.set('authorization', `Bearer ${lease.token}`);
  const ended = (name: string) => {
    let settle!: (outcome: { name: string; error?: ServiceError }) => void;
    const outcome = new Promise<{ name: string; error?: ServiceError }>((resolve) => (settle = resolve));
    return { outcome, done: (error?: ServiceError | null) => settle({ name, error: error ?? undefined }) };
  };
  const write = ended('WriteArray');
  const writing = client.arrays.WriteArray(metadata, (error) => write.done(error));
  writing.write({ header: { array_id: array.array_id, offset: 0 } });
  writing.write({ chunk: Buffer.alloc(1024 * 1024, 1) });
  const read = ended('ReadArray');
  // A client that stops reading after the daemon's first 2 MiB; a grpc-js stream paused before any
  // 'data' listener did not hold the daemon back: it sent all 64 MiB within half a second and ended the
  // stream, so on a loaded machine the read could end before the poll below saw both streams.
  const proxy = await silentProxy(daemon.tcpAddress, { passDownBytes: 2 * 1024 * 1024 });
  const readClient = new TensormemClient(proxy.address, { dataPlane: false });
  const reading = readClient.arrays.ReadArray({ array_id: array.array_id }, metadata);
  reading.on('data', () => {});
  reading.on('error', (error: ServiceError) => read.done(error));
  reading.on('end', () => read.done());
  // Both calls have reached the daemon: both streams are counted, the write's chunk is in and the read
  // has sent some (polled: on a loaded machine that may take a while).
  const metricsUrl = `http://${String(daemon.logs.find((entry) => entry.event === 'listening')!.metricsAddress)}/metrics`;
  const transferred = (text: string, direction: string) => Number(new RegExp(`tensormem_array_transfer_bytes_total\\{transport="grpc",direction="${direction}"\\} (\\d+)`).exec(text)?.[1] ?? 0);
  await expect
    .poll(
      async () => {
        const text = await (await fetch(metricsUrl)).text();
        return { streams: /tensormem_tenant_streams\{tenant="default"\} (\d+)/.exec(text)?.[1], written: transferred(text, 'write') >= 1024 * 1024, read: transferred(text, 'read') > 0 };
      },
      { timeout: 15_000 },
    )
    .toEqual({ streams: '2', written: true, read: true });
  const close = () => {
    client.close();
    readClient.close();
    void proxy.close();
  };
  return { daemon, client: { close }, outcomes: Promise.all([write.outcome, read.outcome]) };
}

function expectShuttingDown(outcomes: Array<{ name: string; error?: ServiceError }>) {
  for (const { name, error } of outcomes) {
    expect(error, `${name} ended without an error`).toBeDefined();
    const seen = clientError(error!);
    expect({ name, code: status[seen.code] }, seen.message).toEqual({ name, code: 'UNAVAILABLE' });
  }
  // The write's status goes out whole (the stream never sent a message back): the reason says why.
  expect(clientError(outcomes[0].error!).reason).toBe('SHUTTING_DOWN');
}

/**
 * The exit status stays 0 (a stop that ran out of time is no failure to restart for); a warning says what
 * was cut. The write, and the read unless its own end came first on a loaded machine.
 */
function expectDrainIncomplete(logs: Array<Record<string, unknown>>, why: string) {
  const line = logs.find((entry) => entry.event === 'drain_incomplete');
  expect(line, JSON.stringify(line)).toMatchObject({ level: 40, why });
  const cut = line!.grpcCallsCut as number;
  expect([1, 2]).toContain(cut);
  expect(line!.msg).toBe(`the drain ended with calls in flight (${why}): ${cut} gRPC call${cut === 1 ? '' : 's'} cut with UNAVAILABLE / SHUTTING_DOWN; every lease is still freed and the exit status is 0`);
}

describe('calls that the drain cuts', () => {
  it('end with UNAVAILABLE / SHUTTING_DOWN, not CANCELLED, when --shutdown-timeout passes', async () => {
    const { daemon, client, outcomes } = await callsInFlight(['--shutdown-timeout', '500ms']);
    try {
      const signalled = Date.now();
      expect(await daemon.stop('SIGTERM')).toBe(0);
      expectShuttingDown(await outcomes);
      expect(daemon.logs.find((entry) => entry.event === 'stopped')).toMatchObject({ drained: false });
      // The exit status stays 0 (a stop that ran out of time is no failure to restart for); a warning says what was cut.
      expectDrainIncomplete(daemon.logs, '--shutdown-timeout (500 ms) passed');
      // The cut's statuses take a moment to go out, not another timeout.
      expect(Date.now() - signalled).toBeLessThan(500 + 3_000);
    } finally {
      client.close();
    }
  });

  it('end with UNAVAILABLE / SHUTTING_DOWN, not CANCELLED, when a second SIGTERM cuts the drain', async () => {
    const { daemon, client, outcomes } = await callsInFlight(['--shutdown-timeout', '30s']);
    try {
      daemon.child.kill('SIGTERM');
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(await daemon.stop('SIGTERM')).toBe(0);
      expectShuttingDown(await outcomes);
      expect(daemon.logs.some((entry) => entry.event === 'drain_cut')).toBe(true);
      expectDrainIncomplete(daemon.logs, 'SIGTERM cut the drain');
      expect(daemon.logs.find((entry) => entry.event === 'stopped')).toMatchObject({ drained: false });
    } finally {
      client.close();
    }
  });
});
