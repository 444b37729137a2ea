/**
 * ReadArray calls that the client cancels mid-stream: each handler must end, so that its bulk-stream
 * mark on the V8 heap growth (src/heap-growth.ts) and its chunk buffers go with it. The daemon runs
 * in this process so that the test can read context.heapGrowth.streamsInFlight.
 */
import { Metadata } from '@grpc/grpc-js';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TensormemClient } from '../../src/client/tensormem-client';
import { loadConfig } from '../../src/config/config';
import { Daemon, startDaemon } from '../../src/daemon';

const MiB = 1024 * 1024;

describe('ReadArray cancelled by the client', () => {
  let daemon: Daemon;
  let client: TensormemClient;

  beforeAll(async () => {
    // 4 MiB chunks: each copy out of the pool takes long enough that a cancel often lands during it.
    const config = loadConfig(['--backend', 'host', '--listen', '127.0.0.1:0', '--metrics-listen', 'off', '--data-listen', 'off', '--emulated-device', '2G', '--allow-small-device', '--chunk-bytes', '4M'], {});
    daemon = await startDaemon(config, pino({ level: 'silent' }));
    client = new TensormemClient(daemon.running.addresses[0]);
  });

  afterAll(async () => {
    client?.close();
    await daemon?.shutdown('test');
  });

  it('ends every handler: no bulk stream stays marked in flight', async () => {
    const lease = await client.openLease({ clientName: 'read-cancel' });
    const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [64 * MiB], placement: 'PLACEMENT_HOST_ONLY' });
    const metadata = new Metadata();
    metadata.set('authorization', `Bearer ${lease.token}`);
    const calls = 40;
    for (let i = 0; i < calls; i++) {
      await new Promise<void>((resolve) => {
        const stream = client.arrays.ReadArray({ array_id: array.array_id, offset: 0, length: 0 }, metadata);
        let messages = 0;
        stream.on('data', () => {
          if (++messages === 1 + (i % 5)) stream.cancel();
        });
        stream.on('error', () => resolve());
        stream.on('end', () => resolve());
      });
    }
    const heapGrowth = daemon.context.heapGrowth!;
    const deadline = Date.now() + 5000;
    while (heapGrowth.streamsInFlight > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(heapGrowth.streamsInFlight).toBe(0);
    // The daemon still serves reads after all that.
    expect((await lease.read(array.array_id, 0, 16)).byteLength).toBe(16);
    await lease.close();
  });
});
