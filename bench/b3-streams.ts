/**
 * B3: WriteArray (client stream) and ReadArray (server stream) of one DEVICE array on the host backend,
 * against a bare grpc-js client stream (Upload: each chunk copied into a preallocated buffer) and server
 * stream (Download: views of a preallocated buffer) on the echo server, with the same chunk size
 * (1 MiB both ways: the client's write chunks and the daemon's --chunk-bytes) and channel options.
 *
 * The client code is the same for both sides: it sends views of one source buffer, waits for 'drain'
 * when grpc-js asks, and copies every received chunk into one preallocated destination. The first
 * repetition of each of the four transfers is a warm-up (it also pays first-touch costs: the daemon's
 * device pages on the first write, and the lazy host mirror on the first read) and is reported apart;
 * the first tensormem write and read are checked byte for byte (sha256 of source and destination).
 */
import { createHash } from 'node:crypto';
import { ClientReadableStream, Metadata } from '@grpc/grpc-js';
import { TensormemClient } from '../src/client/tensormem-client';
import { startDaemon } from './lib/daemon';
import { EchoClient, echoClient, startEchoServer } from './lib/echo';
import { Row, cpuPerGBText, gbps, times } from './lib/report';
import { cpuSecondsOf } from './lib/processes';
import { Writable, download, upload } from './lib/streams';
import { transferRow } from './lib/transfer-row';
import type { BenchOptions } from './options';

const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;


export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A pattern in which every 4-byte word differs from its neighbours, so a misplaced chunk shows. */
export function pattern(bytes: number): Buffer {
  const buffer = Buffer.allocUnsafe(bytes);
  const words = new Uint32Array(buffer.buffer, buffer.byteOffset, Math.floor(bytes / 4));
  for (let i = 0; i < words.length; i++) words[i] = Math.imul(i + 1, 2654435761) >>> 0;
  for (let i = words.length * 4; i < bytes; i++) buffer[i] = i & 0xff;
  return buffer;
}

export const B3_TARGET = '≥ 0.9 ×';

export async function runB3(options: BenchOptions, daemonFlags: string[]): Promise<Row[]> {
  const bytes = options.b3Bytes;
  const chunkBytes = options.b3ChunkBytes;
  const daemon = await startDaemon([...daemonFlags, '--chunk-bytes', String(chunkBytes)]);
  const echo = await startEchoServer(MAX_MESSAGE_BYTES, bytes).catch(async (error) => {
    await daemon.stop();
    throw error;
  });
  const unix = options.transport === 'unix';
  const client = new TensormemClient(unix ? daemon.unixAddress : daemon.tcpAddress, { maxMessageBytes: MAX_MESSAGE_BYTES, chunkBytes });
  const bare: EchoClient = echoClient(unix ? echo.unixAddress : echo.tcpAddress, MAX_MESSAGE_BYTES);
  try {
    const lease = await client.openLease({ clientName: 'bench-b3', ttlSeconds: 3600 });
    const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [bytes] });
    const source = pattern(bytes);
    const destination = Buffer.alloc(bytes);
    const md = () => client.metadata(lease.token);

    const tmWrite = async () => {
      const result = (await upload((cb) => client.arrays.WriteArray(md(), cb) as unknown as Writable, source, chunkBytes, { header: { array_id: array.array_id, offset: 0 } }, (chunk) => ({ chunk }))) as { bytes_written: number };
      if (result.bytes_written !== bytes) throw new Error(`WriteArray wrote ${result.bytes_written} of ${bytes} bytes`);
    };
    const tmRead = async () => {
      const got = await download(client.arrays.ReadArray({ array_id: array.array_id, offset: 0, length: 0 }, md()) as unknown as ClientReadableStream<Record<string, Buffer>>, 'data', destination);
      if (got !== bytes) throw new Error(`ReadArray returned ${got} of ${bytes} bytes`);
    };
    const baseWrite = async () => {
      const result = (await upload((cb) => bare.Upload(new Metadata(), cb) as Writable, source, chunkBytes)) as { bytes_written: number };
      if (result.bytes_written !== bytes) throw new Error(`Upload wrote ${result.bytes_written} of ${bytes} bytes`);
    };
    const baseRead = async () => {
      const got = await download(bare.Download({ bytes, chunk_bytes: chunkBytes }, new Metadata()) as ClientReadableStream<Record<string, Buffer>>, 'data', destination);
      if (got !== bytes) throw new Error(`Download returned ${got} of ${bytes} bytes`);
    };
    // Server CPU seconds per transfer (daemon or echo server, all threads), beside the wall time.
    const cpu = { tmWrite: [] as number[], baseWrite: [] as number[], tmRead: [] as number[], baseRead: [] as number[] };
    const serverOf = { tmWrite: daemon.child.pid, tmRead: daemon.child.pid, baseWrite: echo.child.pid, baseRead: echo.child.pid };
    let measuring = false;
    const timedAs = async (key: keyof typeof cpu, fn: () => Promise<void>) => {
      const cpuBefore = cpuSecondsOf(serverOf[key]);
      const start = process.hrtime.bigint();
      await fn();
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      const cpuAfter = cpuSecondsOf(serverOf[key]);
      if (measuring && cpuBefore !== undefined && cpuAfter !== undefined) cpu[key].push(cpuAfter - cpuBefore);
      return seconds;
    };
    const timed = (fn: () => Promise<void>) => timedAs(fn === tmWrite ? 'tmWrite' : fn === tmRead ? 'tmRead' : fn === baseWrite ? 'baseWrite' : 'baseRead', fn);

    // Warm-up repetition, with the byte-exact check of the tensormem path.
    const warm = { tmWrite: await timed(tmWrite), baseWrite: await timed(baseWrite), tmRead: 0, baseRead: 0 };
    destination.fill(0);
    warm.tmRead = await timed(tmRead);
    const sourceHash = sha256(source);
    const readHash = sha256(destination);
    if (sourceHash !== readHash) throw new Error(`B3: bytes read back differ from bytes written (sha256 ${readHash} != ${sourceHash})`);
    warm.baseRead = await timed(baseRead);

    const seconds = { tmWrite: [] as number[], baseWrite: [] as number[], tmRead: [] as number[], baseRead: [] as number[] };
    measuring = true;
    for (let rep = 0; rep < options.b3Reps; rep++) {
      // Alternate which side goes first, so drift in the machine's state falls on both.
      if (rep % 2 === 0) {
        seconds.tmWrite.push(await timed(tmWrite));
        seconds.baseWrite.push(await timed(baseWrite));
        seconds.tmRead.push(await timed(tmRead));
        seconds.baseRead.push(await timed(baseRead));
      } else {
        seconds.baseWrite.push(await timed(baseWrite));
        seconds.tmWrite.push(await timed(tmWrite));
        seconds.baseRead.push(await timed(baseRead));
        seconds.tmRead.push(await timed(tmRead));
      }
    }
    await lease.close();

    const mib = `${(bytes / 2 ** 20).toFixed(0)} MiB`;
    const target = { text: B3_TARGET, ratio: 0.9 };
    const row = (id: string, what: string, tm: number[], base: number[], warmTm: number, warmBase: number, baseName: string, tmCpu: number[], baseCpu: number[]): Row =>
      transferRow(id, what, bytes, { tensormemSeconds: tm, baselineSeconds: base, tensormemCpu: tmCpu, baselineCpu: baseCpu, warmTensormemSeconds: warmTm, warmBaselineSeconds: warmBase }, baseName, target, {
        chunkBytes,
        transport: options.transport,
        reps: options.b3Reps,
      });
    const write = row('B3.write', `WriteArray stream, ${mib}`, seconds.tmWrite, seconds.baseWrite, warm.tmWrite, warm.baseWrite, 'client stream', cpu.tmWrite, cpu.baseWrite);
    const read = row('B3.read', `ReadArray stream, ${mib}`, seconds.tmRead, seconds.baseRead, warm.tmRead, warm.baseRead, 'server stream', cpu.tmRead, cpu.baseRead);
    read.values!.sha256 = { source: sourceHash, readBack: readHash, equal: true };
    const pairedText = `median of per-rep paired ratios: write ${times(write.values!.medianOfPairedRatios as number)}, read ${times(read.values!.medianOfPairedRatios as number)}`;
    read.note =
      `B3: ratio of median GB/s over ${options.b3Reps} alternating reps (${pairedText}) of ${mib} in ${(chunkBytes / 2 ** 20).toFixed(0)} MiB chunks over ${options.transport}; ` +
      `sha256 of the bytes read back equals the source (${sourceHash.slice(0, 16)}…); warm-up (first touch, lazy mirror) ` +
      `write ${gbps(bytes, warm.tmWrite).toFixed(3)} / ${gbps(bytes, warm.baseWrite).toFixed(3)} GB/s, read ${gbps(bytes, warm.tmRead).toFixed(3)} / ${gbps(bytes, warm.baseRead).toFixed(3)} GB/s (tensormem / baseline); server CPU s per GB (median, all threads) write ${cpuPerGBText(write)}, read ${cpuPerGBText(read)} (tensormem / baseline)`;
    return [write, read];
  } finally {
    client.close();
    bare.close();
    await Promise.all([daemon.stop(), echo.stop()]);
  }
}
