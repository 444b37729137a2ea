/**
 * Not a row of `npm run bench`: where the typed client's two transfer paths cross. For each size, one
 * HOST_ONLY array is written and read back over the gRPC streams (`writeGrpc` + `readGrpc`) and over
 * the HTTP data plane (`write` + `read` with `dataPlane.thresholdBytes` 1, on pooled keep-alive
 * connections), alternating which path goes first, against one daemon with `--data-listen` on TCP
 * loopback. Prints the median milliseconds of a write + read pair per size and path, and their ratio:
 * ClientOptions.dataPlane.thresholdBytes belongs where HTTP stops being slower (bench/README.md,
 * "Transfer paths of the typed client").
 *
 *   node dist/bench/transfer-sizes.js [SIZE...]     (bytes, or with K / M: 4K 64K 256K 1M 4M 16M by default)
 *
 * With TENSORMEM_ADDRESS set (HOST:PORT or unix:PATH) it measures that daemon, which must have a data
 * plane this client can use, instead of starting one (a host-backend daemon on ephemeral loopback ports).
 */
import { TensormemClient } from '../src/client/tensormem-client';
import { startDaemon } from './lib/daemon';
import { median } from './lib/stats';

const KiB = 1024;
const MiB = 1024 * KiB;
/** Bytes moved per size and path: enough pairs for a steady median, at least MIN_PAIRS and at most MAX_PAIRS. */
const BYTES_PER_SIZE = 64 * MiB;
const MIN_PAIRS = 5;
const MAX_PAIRS = 200;
const WARM_UP_PAIRS = 3;

function parseSize(text: string): number {
  const match = /^(\d+)([KM]?)$/i.exec(text);
  if (!match) throw new Error(`Expected a size in bytes, or with K or M (64K), but received ${JSON.stringify(text)}`);
  return Number(match[1]) * (match[2].toUpperCase() === 'M' ? MiB : match[2].toUpperCase() === 'K' ? KiB : 1);
}

function sizeText(bytes: number): string {
  return bytes >= MiB && bytes % MiB === 0 ? `${bytes / MiB} MiB` : bytes >= KiB && bytes % KiB === 0 ? `${bytes / KiB} KiB` : `${bytes} B`;
}

async function main(): Promise<void> {
  const sizes = (process.argv.length > 2 ? process.argv.slice(2) : ['4K', '64K', '256K', '1M', '4M', '16M']).map(parseSize);
  const largest = Math.max(...sizes);
  const given = process.env.TENSORMEM_ADDRESS;
  const daemon = given
    ? undefined
    : await startDaemon(['--backend', 'host', '--emulated-device', '2G', '--allow-small-device', '--maxbytes', '1G', '--host-maxbytes', String(Math.max(1024 * MiB, 4 * largest)), '--data-listen', '127.0.0.1:0', '--log-level', 'info']);
  const client = new TensormemClient(given ?? daemon!.tcpAddress, { dataPlane: { thresholdBytes: 1 } });
  try {
    const lease = await client.openLease({ ttlSeconds: 600 });
    if (!lease.dataPlane) throw new Error('OpenLease named no data plane this client can use');
    const rows = [];
    for (const size of sizes) {
      const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [size], placement: 'PLACEMENT_HOST_ONLY' });
      const source = Buffer.alloc(size, 7);
      const pair = async (path: 'grpc' | 'http'): Promise<number> => {
        const started = process.hrtime.bigint();
        let back: Buffer;
        if (path === 'grpc') {
          await lease.writeGrpc(array.array_id, source);
          back = await lease.readGrpc(array.array_id, 0, size);
        } else {
          await lease.write(array.array_id, source);
          back = await lease.read(array.array_id, 0, size);
        }
        if (back.byteLength !== size) throw new Error(`a ${path} read of ${size} bytes returned ${back.byteLength}`);
        return Number(process.hrtime.bigint() - started) / 1e6;
      };
      for (let i = 0; i < WARM_UP_PAIRS; i++) {
        await pair('grpc');
        await pair('http');
      }
      const pairs = Math.min(MAX_PAIRS, Math.max(MIN_PAIRS, Math.round(BYTES_PER_SIZE / size)));
      const times = { grpc: [] as number[], http: [] as number[] };
      const httpBefore = lease.transfers.http;
      for (let i = 0; i < pairs; i++) for (const path of i % 2 === 0 ? (['http', 'grpc'] as const) : (['grpc', 'http'] as const)) times[path].push(await pair(path));
      if (lease.transfers.http - httpBefore !== 2 * pairs) throw new Error(`${2 * pairs - (lease.transfers.http - httpBefore)} of the data plane transfers went over gRPC`);
      const grpc = median(times.grpc);
      const http = median(times.http);
      rows.push({ size: sizeText(size), pairs, 'gRPC ms': grpc.toFixed(3), 'HTTP ms': http.toFixed(3), 'HTTP / gRPC': `${(http / grpc).toFixed(2)} ×` });
      await lease.free(array.array_id);
    }
    console.table(rows);
    await lease.close();
  } finally {
    client.close();
    await daemon?.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
