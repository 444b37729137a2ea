/**
 * Load: 32 concurrent clients (each its own channel) allocate, write, read and free for a bounded time
 * (TENSORMEM_LOAD_SECONDS, default 15) on loopback. No unintended errors, no leaked bytes. The latency
 * figures are printed for information; the benchmark is where latency is measured against a baseline.
 */
import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { TensormemClient } from '../../src/client/tensormem-client';
import { startDaemon } from '../helpers/daemon-process';

const CLIENTS = 32;
const SECONDS = Number(process.env.TENSORMEM_LOAD_SECONDS ?? 15);

describe('load', () => {
  it(`serves ${CLIENTS} concurrent clients for ${SECONDS} s without errors or leaks`, { timeout: (SECONDS + 60) * 1000 }, async () => {
    const daemon = await startDaemon(['--maxbytes', '512M', '--host-maxbytes', '512M']);
    const monitor = new TensormemClient(daemon.unixAddress);
    const clients = Array.from({ length: CLIENTS }, (_, i) => new TensormemClient(i % 2 ? daemon.tcpAddress : daemon.unixAddress, { deadlineMs: 30_000 }));
    const until = Date.now() + SECONDS * 1000;
    const latenciesMs: number[] = [];
    const errors: string[] = [];
    try {
      await Promise.all(
        clients.map(async (client, index) => {
          const lease = await client.openLease({ tenant: `load-${index % 4}`, clientName: `client-${index}` });
          while (Date.now() < until) {
            const size = 1024 * (1 + ((Math.random() * 256) | 0));
            const data = randomBytes(size);
            const started = process.hrtime.bigint();
            try {
              const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [size], placement: Math.random() < 0.2 ? 'PLACEMENT_HOST_ONLY' : 'PLACEMENT_DEVICE' });
              await lease.write(array.array_id, data);
              const back = await lease.read(array.array_id);
              if (createHash('sha1').update(back).digest('hex') !== createHash('sha1').update(data).digest('hex')) errors.push(`client ${index}: bytes differ`);
              await lease.free(array.array_id);
            } catch (error) {
              errors.push(`client ${index}: ${(error as Error).message}`);
            }
            latenciesMs.push(Number(process.hrtime.bigint() - started) / 1e6);
          }
          await lease.close();
        }),
      );
      expect(errors).toEqual([]);
      const info = await monitor.memoryInfo();
      expect(info.devices[0].used_bytes).toBe(0);
      expect(info.host!.used_bytes).toBe(0);
      expect(await monitor.listLeases()).toEqual([]);
      latenciesMs.sort((a, b) => a - b);
      const at = (q: number) => latenciesMs[Math.min(latenciesMs.length - 1, Math.floor(q * latenciesMs.length))].toFixed(2);
      console.log(`load: ${latenciesMs.length} allocate+write+read+free cycles by ${CLIENTS} clients in ${SECONDS} s; p50 ${at(0.5)} ms, p99 ${at(0.99)} ms`);
      expect(latenciesMs.length).toBeGreaterThan(CLIENTS * 10);
    } finally {
      for (const client of clients) client.close();
      monitor.close();
      expect(await daemon.stop()).toBe(0);
    }
  });
});
