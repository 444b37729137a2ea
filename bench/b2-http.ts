/**
 * B2: the HTTP data plane. PUT and GET of one 256 MiB DEVICE array (host backend) through
 * src/dataplane/data-plane-client.ts (the typed client's HTTP path: PUT writes the source buffer to the
 * socket as it is; GET reads the body straight into a preallocated destination), against a raw Node
 * socket pipe of the same bytes to a child process (bench/b2-pipe-server.ts): upload = the same source
 * written to a socket whose server counts 'data' events; download = a preallocated buffer written by
 * the server and read by the client straight into the same destination (onread), as the GET does.
 * One connection per transfer on both sides: no connection pool is passed, so the data plane client
 * says `Connection: close` (the typed client reuses pooled connections; the baseline has none). The first repetition of each transfer is a warm-up (it
 * pays the device's first-touch pages and the lazy host mirror) and the first PUT + GET are checked
 * byte for byte (sha256).
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:net';
import { TensormemClient } from '../src/client/tensormem-client';
import { DataPlaneEndpoint, getArray, putArray } from '../src/dataplane/data-plane-client';
import { startDaemon } from './lib/daemon';
import { cpuSecondsOf } from './lib/processes';
import { startServerChild } from './lib/server-child';
import { transferRow } from './lib/transfer-row';
import { Row, cpuPerGBText, gbps, times } from './lib/report';
import { pattern, sha256 } from './b3-streams';
import type { BenchOptions } from './options';

export const B2_TARGET = '≥ 0.7 ×';
export const B2_WHAT = 'HTTP data plane PUT/GET, 256 MiB';
const TARGET_RATIO = 0.7;

interface PipeServer {
  endpoint: DataPlaneEndpoint;
  child: ChildProcess;
  stop(): Promise<unknown>;
}

async function startPipeServer(maxBytes: number, transport: 'tcp' | 'unix'): Promise<PipeServer> {
  const dir = mkdtempSync(join(tmpdir(), 'tensormem-bench-pipe-'));
  const server = await startServerChild('pipe server', join(__dirname, 'b2-pipe-server.js'), [String(maxBytes), join(dir, 'pipe.sock')], dir);
  const tcp = server.addresses.find((a) => !a.startsWith('unix:'))!;
  const unix = server.addresses.find((a) => a.startsWith('unix:'))!;
  const endpoint: DataPlaneEndpoint = transport === 'unix' ? { path: unix.slice('unix:'.length) } : { host: '127.0.0.1', port: Number(tcp.split(':')[1]) };
  return { endpoint, child: server.child, stop: server.stop };
}

function requestHeader(op: 'U' | 'D', bytes: number): Buffer {
  const header = Buffer.alloc(9);
  header[0] = op.charCodeAt(0);
  header.writeBigUInt64BE(BigInt(bytes), 1);
  return header;
}

function socketOptions(endpoint: DataPlaneEndpoint) {
  return 'path' in endpoint ? { path: endpoint.path } : { host: endpoint.host, port: endpoint.port };
}

/** Raw upload: the header and `source` written to the socket; resolves on the server's "K". */
function rawUpload(endpoint: DataPlaneEndpoint, source: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketOptions(endpoint), () => {
      socket.setNoDelay(true);
      socket.write(requestHeader('U', source.byteLength));
      socket.write(source);
    });
    socket.once('data', () => {
      socket.destroy();
      resolve();
    });
    socket.once('error', reject);
  });
}

/** Raw download: `destination.byteLength` bytes read straight into `destination` (onread). */
function rawDownload(endpoint: DataPlaneEndpoint, destination: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    let received = 0;
    const socket = connect({
      ...socketOptions(endpoint),
      onread: {
        buffer: () => destination.subarray(received),
        callback: (bytes: number) => {
          received += bytes;
          if (received >= destination.byteLength) {
            socket.destroy();
            resolve();
          }
          return true;
        },
      },
    });
    socket.once('connect', () => socket.write(requestHeader('D', destination.byteLength)));
    socket.once('error', reject);
    socket.once('close', () => (received < destination.byteLength ? reject(new Error(`raw download ended after ${received} bytes`)) : undefined));
  });
}

export async function runB2(options: BenchOptions, daemonFlags: string[]): Promise<Row[]> {
  const bytes = options.b2Bytes;
  const unix = options.transport === 'unix';
  const dataDir = mkdtempSync(join(tmpdir(), 'tensormem-bench-b2-'));
  const daemon = await startDaemon([...daemonFlags, '--data-listen', unix ? `unix:${join(dataDir, 'data.sock')}` : '127.0.0.1:0']);
  const pipe = await startPipeServer(bytes, options.transport).catch(async (error) => {
    await daemon.stop();
    throw error;
  });
  const client = new TensormemClient(daemon.tcpAddress);
  try {
    const lease = await client.openLease({ clientName: 'bench-b2', ttlSeconds: 3600 });
    const endpoint = lease.dataPlane;
    if (!endpoint) throw new Error(`OpenLease returned no usable data_address (got ${JSON.stringify(lease)})`);
    const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [bytes] });
    const source = pattern(bytes);
    const destination = Buffer.alloc(bytes);

    const transfers = {
      tmPut: async () => {
        const written = await putArray(endpoint, lease.token, array.array_id, source);
        if (written !== bytes) throw new Error(`PUT wrote ${written} of ${bytes} bytes`);
      },
      basePut: () => rawUpload(pipe.endpoint, source),
      tmGet: async () => {
        const got = await getArray(endpoint, lease.token, array.array_id, 0, 0, destination);
        if (got.byteLength !== bytes) throw new Error(`GET returned ${got.byteLength} of ${bytes} bytes`);
      },
      baseGet: () => rawDownload(pipe.endpoint, destination),
    };
    type Key = keyof typeof transfers;
    const serverPid: Record<Key, number | undefined> = { tmPut: daemon.child.pid, tmGet: daemon.child.pid, basePut: pipe.child.pid, baseGet: pipe.child.pid };
    const seconds: Record<Key, number[]> = { tmPut: [], basePut: [], tmGet: [], baseGet: [] };
    const cpu: Record<Key, number[]> = { tmPut: [], basePut: [], tmGet: [], baseGet: [] };
    const timed = async (key: Key, record: boolean): Promise<number> => {
      const cpuBefore = cpuSecondsOf(serverPid[key]);
      const start = process.hrtime.bigint();
      await transfers[key]();
      const elapsed = Number(process.hrtime.bigint() - start) / 1e9;
      const cpuAfter = cpuSecondsOf(serverPid[key]);
      if (record) {
        seconds[key].push(elapsed);
        if (cpuBefore !== undefined && cpuAfter !== undefined) cpu[key].push(cpuAfter - cpuBefore);
      }
      return elapsed;
    };

    const warm = { tmPut: await timed('tmPut', false), basePut: await timed('basePut', false), tmGet: 0, baseGet: 0 };
    destination.fill(0);
    warm.tmGet = await timed('tmGet', false);
    const sourceHash = sha256(source);
    const readHash = sha256(destination);
    if (sourceHash !== readHash) throw new Error(`B2: bytes read back over HTTP differ from bytes written (sha256 ${readHash} != ${sourceHash})`);
    warm.baseGet = await timed('baseGet', false);

    for (let rep = 0; rep < options.b2Reps; rep++) {
      const order: Key[] = rep % 2 === 0 ? ['tmPut', 'basePut', 'tmGet', 'baseGet'] : ['basePut', 'tmPut', 'baseGet', 'tmGet'];
      for (const key of order) await timed(key, true);
    }
    await lease.close();

    const mib = `${(bytes / 2 ** 20).toFixed(0)} MiB`;
    const row = (id: string, what: string, tm: Key, base: Key, baseName: string): Row =>
      transferRow(
        id,
        what,
        bytes,
        { tensormemSeconds: seconds[tm], baselineSeconds: seconds[base], tensormemCpu: cpu[tm], baselineCpu: cpu[base], warmTensormemSeconds: warm[tm], warmBaselineSeconds: warm[base] },
        baseName,
        { text: B2_TARGET, ratio: TARGET_RATIO },
        { transport: options.transport, reps: options.b2Reps },
      );
    const put = row('B2.put', `HTTP PUT, ${mib}`, 'tmPut', 'basePut', 'raw socket upload');
    const get = row('B2.get', `HTTP GET, ${mib}`, 'tmGet', 'baseGet', 'raw socket download');
    get.values!.sha256 = { source: sourceHash, readBack: readHash, equal: true };
    get.note =
      `B2: ratio of median GB/s over ${options.b2Reps} alternating reps of ${mib} over ${options.transport} (median of paired ratios: put ${times(put.values!.medianOfPairedRatios as number)}, get ${times(get.values!.medianOfPairedRatios as number)}); ` +
      `sha256 of the bytes read back over HTTP equals the source (${sourceHash.slice(0, 16)}…); warm-up (first touch, lazy mirror) put ${gbps(bytes, warm.tmPut).toFixed(3)} / ${gbps(bytes, warm.basePut).toFixed(3)} GB/s, ` +
      `get ${gbps(bytes, warm.tmGet).toFixed(3)} / ${gbps(bytes, warm.baseGet).toFixed(3)} GB/s; server CPU s per GB (median) put ${cpuPerGBText(put)}, get ${cpuPerGBText(get)} (tensormem / baseline)`;
    return [put, get];
  } finally {
    client.close();
    await Promise.all([daemon.stop(), pipe.stop()]);
  }
}
