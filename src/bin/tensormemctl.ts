#!/usr/bin/env node
/** tensormemctl: the command-line client of tensormemd. */
import { parseArgs } from 'node:util';
import { LeaseSession, TensormemClient, TensormemClientError } from '../client/tensormem-client';
import { renderTable } from '../client/table';
import { formatIec } from '../units';

const HELP = `Usage: tensormemctl [--address ADDR] [-o table|json] [--token TOKEN] <command>

Commands:
  info      memory per device pool, host pool, process and tenant (GetMemoryInfo)
  leases    open leases: tenant, client, bytes, arrays, expiry (ListLeases)
  arrays    arrays: of the lease of --token (ListArrays), or every array block by owner (GetMemorySnapshot)
  config    the daemon's effective configuration and where each value came from (GetConfig)
  tenants   usage of each tenant against its quota, guarantee and max leases (GetMemoryInfo)
  evict ID  close lease ID and free what it holds (EvictLease; needs an admin --token)

Flags:
  --address ADDR   daemon address: HOST:PORT or unix:PATH (default $TENSORMEM_ADDRESS or unix:/tmp/tensormemd.sock)
  -o, --output F   table (default) or json
  --token TOKEN    a lease, tenant or admin token (sent as authorization: Bearer); default $TENSORMEM_TOKEN
  -h, --help       this help`;

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      address: { type: 'string', default: process.env.TENSORMEM_ADDRESS ?? 'unix:/tmp/tensormemd.sock' },
      output: { type: 'string', short: 'o', default: 'table' },
      token: { type: 'string', default: process.env.TENSORMEM_TOKEN },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help || positionals.length === 0) {
    process.stdout.write(`${HELP}\n`);
    return values.help ? 0 : 2;
  }
  if (values.output !== 'table' && values.output !== 'json') throw new Error(`Expected table or json for --output but received "${values.output}"`);
  const json = values.output === 'json';
  const client = new TensormemClient(values.address!, { deadlineMs: 10_000 });
  const print = (data: unknown, table: () => string) => process.stdout.write(`${json ? JSON.stringify(data, null, 2) : table()}\n`);
  try {
    switch (positionals[0]) {
      case 'info': {
        const info = await client.memoryInfo(values.token);
        print(info, () =>
          [
            `backend: ${info.backend}`,
            '',
            renderTable(
              ['DEVICE', 'NAME', 'TOTAL', 'FREE', 'MAX', 'RESERVED', 'USED', 'PEAK', 'LARGEST FREE', 'BLOCKS', 'FAILED'],
              info.devices.map((d) => [d.device, d.name, formatIec(d.total_bytes), formatIec(d.free_bytes), formatIec(d.max_bytes), formatIec(d.reserved_bytes), formatIec(d.used_bytes), formatIec(d.peak_used_bytes), formatIec(d.largest_free_block_bytes), d.allocation_count, d.failed_allocations_total]),
            ),
            '',
            renderTable(
              ['HOST', 'MAX', 'USED', 'MIRRORS', 'HOST_ONLY', 'MMAP', 'RESERVED'],
              [['host', formatIec(info.host!.max_bytes), formatIec(info.host!.used_bytes), formatIec(info.host!.mirror_bytes), formatIec(info.host!.host_only_bytes), formatIec(info.host!.mmap_bytes), formatIec(info.host!.reserved_bytes)]],
            ),
            '',
            renderTable(
              ['PROCESS', 'RSS', 'MAX PHYSICAL', 'HEAP USED', 'HEAP LIMIT'],
              [['tensormemd', formatIec(info.process!.physical_bytes), formatIec(info.process!.max_physical_bytes), formatIec(info.process!.heap_used_bytes), formatIec(info.process!.heap_limit_bytes)]],
            ),
            '',
            renderTable(['TENANT', 'LEASES', 'DEVICE USED', 'HOST USED'], info.tenants.map((t) => [t.tenant, t.leases, formatIec(t.device_used_bytes), formatIec(t.host_used_bytes)])),
          ].join('\n'),
        );
        break;
      }
      case 'leases': {
        const leases = await client.listLeases(values.token);
        print(leases, () =>
          renderTable(
            ['LEASE', 'TENANT', 'CLIENT', 'ARRAYS', 'DEVICE', 'HOST', 'AGE', 'EXPIRES'],
            leases.map((l) => [l.lease_id, l.tenant, l.client_name, l.array_count, formatIec(l.device_bytes), formatIec(l.host_bytes), `${l.age_seconds}s`, new Date(Number(l.expires_at!.seconds) * 1000).toISOString()]),
          ),
        );
        break;
      }
      case 'arrays': {
        if (values.token) {
          const lease = await client.listLeases(values.token);
          const arrays = await new LeaseSession(client, { lease_id: lease[0].lease_id, token: values.token, ttl_seconds: 0, expires_at: null, tenant: '', client_name: '' }).list();
          print(arrays, () =>
            renderTable(
              ['ARRAY', 'TYPE', 'SHAPE', 'BYTES', 'PLACEMENT', 'DEVICE', 'MIRROR', 'LABEL'],
              arrays.map((a) => [a.array_id, a.data_type.replace('DATA_TYPE_', ''), `[${a.shape.join(',')}]`, a.byte_size, a.placement.replace('PLACEMENT_', ''), a.device, a.has_host_mirror ? (a.host_valid ? 'valid' : 'stale') : '-', a.label]),
            ),
          );
        } else {
          const snapshot = await client.memorySnapshot();
          const blocks = snapshot.pools.flatMap((pool) => pool.segments.flatMap((segment) => segment.blocks.filter((b) => !b.free).map((b) => ({ pool: pool.pool, ...b }))));
          print(blocks, () =>
            renderTable(['POOL', 'LEASE', 'TENANT', 'ARRAY', 'PURPOSE', 'BYTES', 'LABEL'], blocks.map((b) => [b.pool, b.lease_id, b.tenant, b.array_id, b.purpose, formatIec(b.bytes), b.label])),
          );
        }
        break;
      }
      case 'tenants': {
        const info = await client.memoryInfo(values.token);
        const quota = (bytes: number) => (bytes > 0 ? formatIec(bytes) : '-');
        const share = (used: number, cap: number) => (cap > 0 ? `${((100 * used) / cap).toFixed(1)}%` : '-');
        print(info.tenants, () =>
          renderTable(
            ['TENANT', 'LEASES', 'MAX', 'DEVICE USED', 'DEVICE QUOTA', 'OF QUOTA', 'GUARANTEE', 'HOST USED', 'HOST QUOTA', 'OF QUOTA'],
            info.tenants.map((t) => [t.tenant, t.leases, t.max_leases || '-', formatIec(t.device_used_bytes), quota(t.quota_bytes), share(t.device_used_bytes, t.quota_bytes), quota(t.guarantee_bytes), formatIec(t.host_used_bytes), quota(t.host_quota_bytes), share(t.host_used_bytes, t.host_quota_bytes)]),
          ),
        );
        break;
      }
      case 'evict': {
        const leaseId = positionals[1];
        if (!leaseId) throw new Error('evict needs a lease id: tensormemctl evict LEASE_ID --token ADMIN_TOKEN');
        const freed = await client.evictLease(leaseId, values.token);
        print({ lease_id: leaseId, freed_bytes: freed }, () => `evicted ${leaseId}: freed ${formatIec(freed)}`);
        break;
      }
      case 'config': {
        const config = await client.config(values.token);
        print(config, () => [`tensormemd ${config.version}, backend ${config.backend}`, '', renderTable(['NAME', 'VALUE', 'SOURCE', 'SEED NAME'], config.values.map((v) => [v.name, v.value, v.source, v.seed_name]))].join('\n'));
        break;
      }
      default:
        process.stderr.write(`tensormemctl: unknown command "${positionals[0]}"\n${HELP}\n`);
        return 2;
    }
    return 0;
  } finally {
    client.close();
  }
}

// exitCode rather than exit(): output to a pipe is written asynchronously and must not be cut short.
main().then(
  (code) => {
    process.exitCode = code;
  },
  (error) => {
    process.stderr.write(`tensormemctl: ${error instanceof TensormemClientError ? error.message : (error as Error).message}\n`);
    process.exitCode = 1;
  },
);
