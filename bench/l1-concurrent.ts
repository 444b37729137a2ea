/**
 * L1: latency under load. 32 concurrent clients, each on its own channel, repeat the trainer's cycle
 * AllocateArray → WriteArray → ReadArray → FreeArray on arrays of 1–256 KiB; the baseline is the same
 * 32 clients repeating the same four call shapes on the bare echo server (Echo, Upload, Download, Echo)
 * with the same sizes. Phases alternate (tensormem, echo, tensormem, echo, ...) so both see the same
 * machine; p50 and p99 are taken over every cycle of every client.
 *
 * The row also checks what the load test checks: every byte read back equals what was written, no call
 * fails, and no byte is left allocated at the end.
 */
import { Metadata, type ClientReadableStream, type ServiceError } from '@grpc/grpc-js';
import { TensormemClient, type LeaseSession } from '../src/client/tensormem-client';
import { startDaemon } from './lib/daemon';
import { echoClient, startEchoServer, type EchoClient } from './lib/echo';
import { Row, times } from './lib/report';
import { nowNs, percentile, xorshift32 } from './lib/stats';
import { Writable, download, upload } from './lib/streams';
import { pattern } from './b3-streams';
import type { BenchOptions } from './options';

const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;
const KiB = 1024;
const MAX_ARRAY_BYTES = 256 * KiB;
export const L1_WHAT = 'allocate+write+read+free, concurrent clients';
export const L1_TARGET = 'p50/p99 reported; 0 errors, 0 leaked bytes';

function ms(value: number): string {
  return `${value.toFixed(2)} ms`;
}

/** Sizes 1–256 KiB from a per-client sequence, so both sides move the same bytes in the same order. */
function sizesFor(client: number): () => number {
  const next = xorshift32(0x51ed + client * 7919);
  return () => KiB * (1 + Math.floor(next() * (MAX_ARRAY_BYTES / KiB)));
}

function echoUnary(client: EchoClient, payload: Buffer): Promise<void> {
  return new Promise((resolve, reject) => client.Echo({ payload }, new Metadata(), (error: ServiceError | null) => (error ? reject(error) : resolve())));
}

export async function runL1(options: BenchOptions, daemonFlags: string[]): Promise<Row> {
  const clientsCount = options.l1Clients;
  const daemon = await startDaemon(daemonFlags);
  const echo = await startEchoServer(MAX_MESSAGE_BYTES, MAX_ARRAY_BYTES).catch(async (error) => {
    await daemon.stop();
    throw error;
  });
  const unix = options.transport === 'unix';
  const address = unix ? daemon.unixAddress : daemon.tcpAddress;
  const clients = Array.from({ length: clientsCount }, () => new TensormemClient(address, { maxMessageBytes: MAX_MESSAGE_BYTES, deadlineMs: 60_000 }));
  const bare = Array.from({ length: clientsCount }, () => echoClient(unix ? echo.unixAddress : echo.tcpAddress, MAX_MESSAGE_BYTES));
  const monitor = new TensormemClient(address);
  const errors: string[] = [];
  try {
    const leases: LeaseSession[] = await Promise.all(clients.map((client, i) => client.openLease({ clientName: `bench-l1-${i}`, ttlSeconds: 3600 })));
    const tmSizes = leases.map((_, i) => sizesFor(i));
    const baseSizes = leases.map((_, i) => sizesFor(i));
    // A pattern (every 4-byte word differs, a different phase per client) with a serial stamped at both
    // ends of each cycle's bytes: with one fill byte per client, a WriteArray that wrote nothing, or a
    // misplaced chunk, read back as the same bytes (a pool block keeps the previous array's contents).
    const sources = leases.map((_, i) => Buffer.from(pattern(MAX_ARRAY_BYTES + 4 * i).subarray(4 * i)));
    const tmSerials = new Uint32Array(clientsCount);
    const baseSerials = new Uint32Array(clientsCount);
    const stamp = (data: Buffer, serial: number) => {
      data.writeUInt32LE(serial, 0);
      data.writeUInt32LE(~serial >>> 0, data.byteLength - 4);
    };
    const echoDestinations = leases.map(() => Buffer.alloc(MAX_ARRAY_BYTES));
    const request = Buffer.alloc(64, 7);

    const tensormemCycle = async (i: number) => {
      const size = tmSizes[i]();
      const data = sources[i].subarray(0, size);
      stamp(data, ++tmSerials[i]);
      const lease = leases[i];
      const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [size] });
      await lease.write(array.array_id, data);
      const back = await lease.read(array.array_id);
      if (!back.equals(data)) errors.push(`client ${i}: the ${size} bytes read back differ from those written`);
      await lease.free(array.array_id);
    };
    const echoCycle = async (i: number) => {
      const size = baseSizes[i]();
      stamp(sources[i].subarray(0, size), ++baseSerials[i]);
      await echoUnary(bare[i], request);
      await upload((cb) => bare[i].Upload(new Metadata(), cb) as Writable, sources[i].subarray(0, size), size);
      const got = await download(bare[i].Download({ bytes: size, chunk_bytes: MAX_ARRAY_BYTES }, new Metadata()) as ClientReadableStream<Record<string, Buffer>>, 'data', echoDestinations[i]);
      if (got !== size) errors.push(`echo client ${i}: Download returned ${got} of ${size} bytes`);
      await echoUnary(bare[i], request);
    };

    /** Every client repeats `cycle` until `seconds` have passed; returns the cycle latencies in ms. */
    const phase = async (seconds: number, cycle: (i: number) => Promise<void>, into: number[] | undefined) => {
      const until = Date.now() + seconds * 1000;
      await Promise.all(
        Array.from({ length: clientsCount }, async (_, i) => {
          while (Date.now() < until) {
            const started = nowNs();
            try {
              await cycle(i);
            } catch (error) {
              errors.push(`client ${i}: ${(error as Error).message}`);
            }
            into?.push(Number(nowNs() - started) / 1e6);
          }
        }),
      );
    };

    await phase(options.l1WarmupSeconds, tensormemCycle, undefined);
    await phase(options.l1WarmupSeconds, echoCycle, undefined);
    const tm: number[] = [];
    const base: number[] = [];
    for (let round = 0; round < options.l1Rounds; round++) {
      if (round % 2 === 0) {
        await phase(options.l1PhaseSeconds, tensormemCycle, tm);
        await phase(options.l1PhaseSeconds, echoCycle, base);
      } else {
        await phase(options.l1PhaseSeconds, echoCycle, base);
        await phase(options.l1PhaseSeconds, tensormemCycle, tm);
      }
    }
    // Every cycle frees its array: blocks still live before the leases close were never freed (closing
    // a lease frees its arrays, so the check after the close alone cannot see a FreeArray that did not).
    const open = await monitor.memoryInfo();
    const liveBeforeClose = open.devices.reduce((sum, device) => sum + Number(device.allocation_count), 0) + Number(open.host?.allocation_count ?? 0);
    await Promise.all(leases.map((lease) => lease.close()));
    const info = await monitor.memoryInfo();
    const leakedBytes = info.devices.reduce((sum, device) => sum + Number(device.used_bytes), 0) + Number(info.host?.used_bytes ?? 0);

    const tmP50 = percentile(tm, 50);
    const tmP99 = percentile(tm, 99);
    const baseP50 = percentile(base, 50);
    const baseP99 = percentile(base, 99);
    const measuredSeconds = options.l1Rounds * options.l1PhaseSeconds;
    const ok = errors.length === 0 && leakedBytes === 0 && liveBeforeClose === 0;
    return {
      id: 'L1',
      what: `${L1_WHAT} (${clientsCount})`,
      measured: `p50 ${ms(tmP50)}, p99 ${ms(tmP99)}`,
      baseline: `p50 ${ms(baseP50)}, p99 ${ms(baseP99)} echo`,
      ratio: `${times(tmP50 / baseP50)} / ${times(tmP99 / baseP99)}`,
      target: L1_TARGET,
      status: ok ? 'pass' : 'fail',
      note:
        `L1: ${clientsCount} clients over ${options.transport}, arrays of 1–256 KiB, ${tm.length} tensormem cycles (${(tm.length / measuredSeconds).toFixed(0)}/s) and ${base.length} echo cycles (${(base.length / measuredSeconds).toFixed(0)}/s) in ${options.l1Rounds} alternating phases of ${options.l1PhaseSeconds} s each; ratio is p50 / p99 against the echo cycle (Echo, Upload, Download, Echo)` +
        (errors.length ? `; ${errors.length} ERRORS, first: ${errors[0]}` : '') +
        (leakedBytes ? `; ${leakedBytes} BYTES LEFT ALLOCATED` : '') +
        (liveBeforeClose ? `; ${liveBeforeClose} BLOCKS STILL LIVE BEFORE THE LEASES CLOSED` : ''),
      values: {
        unit: 'ms per cycle',
        clients: clientsCount,
        transport: options.transport,
        tensormem: { cycles: tm.length, p50: tmP50, p99: tmP99 },
        echo: { cycles: base.length, p50: baseP50, p99: baseP99 },
        ratioP50: tmP50 / baseP50,
        ratioP99: tmP99 / baseP99,
        errors: errors.slice(0, 20),
        errorCount: errors.length,
        leakedBytes,
        liveBlocksBeforeClose: liveBeforeClose,
      },
    };
  } finally {
    for (const client of clients) client.close();
    for (const client of bare) client.close();
    monitor.close();
    await Promise.all([daemon.stop(), echo.stop()]);
  }
}
