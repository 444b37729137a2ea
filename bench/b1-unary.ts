/**
 * B1: AllocateArray + FreeArray round trip (FLOAT32 [256], DEVICE, host backend) against two bare unary
 * echo RPCs on a grpc-js server of the same kind (its own process, same server and channel options).
 *
 * Measurements alternate one by one (tensormem, echo, echo, tensormem, ...), so both series see the same
 * machine state; each sample is one sequential round trip timed with process.hrtime (~50 ns of timer
 * cost against ~100 µs calls). Both clients build a Metadata with the same `authorization: Bearer`
 * header per call and go through a promise, as TensormemClient does.
 */
import { Metadata, ServiceError } from '@grpc/grpc-js';
import { TensormemClient } from '../src/client/tensormem-client';
import { startDaemon } from './lib/daemon';
import { echoClient, startEchoServer } from './lib/echo';
import { Row, times, us } from './lib/report';
import { median, nowNs, summarize, usSince } from './lib/stats';
import type { BenchOptions } from './options';

const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;
export const B1_WHAT = 'AllocateArray+FreeArray round trip';
export const B1_TARGET = '≤ 1.25 ×';

export async function runB1(options: BenchOptions, daemonFlags: string[]): Promise<Row> {
  const daemon = await startDaemon(daemonFlags);
  const echo = await startEchoServer(MAX_MESSAGE_BYTES).catch(async (error) => {
    await daemon.stop();
    throw error;
  });
  const unix = options.transport === 'unix';
  const client = new TensormemClient(unix ? daemon.unixAddress : daemon.tcpAddress, { maxMessageBytes: MAX_MESSAGE_BYTES });
  const bare = echoClient(unix ? echo.unixAddress : echo.tcpAddress, MAX_MESSAGE_BYTES);
  try {
    const lease = await client.openLease({ clientName: 'bench-b1', ttlSeconds: 3600 });
    // A payload the size of an AllocateArrayRequest, and a token of the daemon's token length.
    const payload = Buffer.alloc(64, 7);
    const token = lease.token;
    const echoOnce = () =>
      new Promise<void>((resolve, reject) => {
        const metadata = new Metadata();
        metadata.set('authorization', `Bearer ${token}`);
        bare.Echo({ payload }, metadata, {}, (error: ServiceError | null) => (error ? reject(error) : resolve()));
      });
    const tensormemOnce = async () => {
      const array = await lease.allocate({ dataType: 'DATA_TYPE_FLOAT32', shape: [256] });
      await lease.free(array.array_id);
    };
    const echoPair = async () => {
      await echoOnce();
      await echoOnce();
    };

    for (let i = 0; i < options.b1Warmup; i++) {
      await tensormemOnce();
      await echoPair();
    }
    const tm = new Float64Array(options.b1Iterations);
    const base = new Float64Array(options.b1Iterations);
    for (let i = 0; i < options.b1Iterations; i++) {
      if (i % 2 === 0) {
        let t = nowNs();
        await tensormemOnce();
        tm[i] = usSince(t);
        t = nowNs();
        await echoPair();
        base[i] = usSince(t);
      } else {
        let t = nowNs();
        await echoPair();
        base[i] = usSince(t);
        t = nowNs();
        await tensormemOnce();
        tm[i] = usSince(t);
      }
    }
    const left = (await client.memoryInfo()).devices[0]?.allocation_count ?? -1;
    await lease.close();

    const tmStats = summarize(tm);
    const baseStats = summarize(base);
    const ratio = tmStats.median / baseStats.median;
    const pairRatios = Array.from(tm, (value, i) => value / base[i]);
    const ok = ratio <= 1.25;
    return {
      id: 'B1',
      what: B1_WHAT,
      measured: `${us(tmStats.median)} (p99 ${us(tmStats.p99)})`,
      baseline: `${us(baseStats.median)} (p99 ${us(baseStats.p99)}) 2× echo`,
      ratio: times(ratio),
      target: B1_TARGET,
      status: ok ? 'pass' : 'fail',
      note: `B1: ${options.b1Iterations} alternating samples over ${options.transport}, after ${options.b1Warmup} warm-up pairs; median of per-pair ratios ${times(median(pairRatios))}; p99 ratio ${times(tmStats.p99 / baseStats.p99)}` + (left !== 0 ? `; WARNING: ${left} arrays left on device 0` : ''),
      values: {
        unit: 'µs per round trip',
        transport: options.transport,
        tensormem: tmStats,
        echoPair: baseStats,
        ratioOfMedians: ratio,
        medianOfPairRatios: median(pairRatios),
        ratioOfP99: tmStats.p99 / baseStats.p99,
        arrayShape: 'FLOAT32 [256] DEVICE',
        echoPayloadBytes: payload.byteLength,
        arraysLeftAfterRun: left,
      },
    };
  } finally {
    client.close();
    bare.close();
    await Promise.all([daemon.stop(), echo.stop()]);
  }
}
