/** --metrics-listen: Prometheus /metrics, /api/snapshot and /events of a daemon process with a tenants file, scraped after real allocations. */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TensormemClient } from '../../src/client/tensormem-client';
import { DaemonProcess, runTensormemd, startDaemon } from '../helpers/daemon-process';
import { failure } from '../helpers/thrown';
import { tokenSha256, writeTenantsFile } from '../helpers/tenants-file';

const MiB = 1024 * 1024;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const TOKENS = { a: randomBytes(24).toString('hex'), admin: randomBytes(24).toString('hex') };

/** One sample of the text exposition format. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)$/.exec(line);
    if (!match) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const label of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[label[1]] = label[2];
    samples.push({ name: match[1], labels, value: Number(match[3]) });
  }
  return samples;
}

/** The value of the series `name` whose labels are exactly `labels`; undefined when there is none. */
function sample(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const found = samples.filter((s) => s.name === name && Object.keys(s.labels).length === Object.keys(labels).length && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (found.length > 1) throw new Error(`${name} ${JSON.stringify(labels)} matches ${found.length} series`);
  return found[0]?.value;
}

describe('Prometheus metrics and the status endpoints', () => {
  let daemon: DaemonProcess;
  let client: TensormemClient;
  let base: string;

  const get = (path: string, token: string | null = TOKENS.admin) => fetch(`${base}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  const scrape = async () => {
    const response = await get('/metrics');
    expect(response.status).toBe(200);
    return parseMetrics(await response.text());
  };
  const ALLOCATE = { service: 'tensormem.v1.ArrayService', method: 'AllocateArray' };

  beforeAll(async () => {
    const tenantsPath = writeTenantsFile(`tenants:
  - name: team-a
    token_sha256: "${tokenSha256(TOKENS.a)}"
    quota: { device: 1M, host: 2M }
    max_leases: 4
  - name: ops
    token_sha256: "${tokenSha256(TOKENS.admin)}"
    admin: true
`);
    daemon = await startDaemon(['--tenants', tenantsPath, '--maxbytes', '64M', '--pool-chunk', '4M', '--reclaim-interval', '100ms', '--data-listen', '127.0.0.1:0']);
    const listening = daemon.logs.find((entry) => entry.event === 'listening')!;
    expect(listening.metricsAddress).toMatch(/^127\.0\.0\.1:\d+$/);
    base = `http://${listening.metricsAddress as string}`;
    client = new TensormemClient(daemon.tcpAddress);
  });

  afterAll(async () => {
    client?.close();
    if (!daemon) return;
    // A status page still streaming must not hold the shutdown up: the stream is ended and the daemon exits 0.
    const ended = new Promise<string>((resolve, reject) => {
      const events = request(`${base}/events?interval_ms=100`, { headers: { authorization: `Bearer ${TOKENS.admin}` } }, (response) => {
        let text = '';
        response.on('data', (chunk) => (text += chunk));
        response.on('end', () => resolve(text));
        response.on('error', reject);
        void daemon.stop();
      });
      events.on('error', reject);
      events.end();
    });
    expect(await ended).toContain('event: snapshot');
    expect(await daemon.exited).toBe(0);
  });

  it('needs an admin token under a tenants file', async () => {
    const anonymous = await get('/metrics', null);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toBe('Bearer');
    const refusal = await anonymous.text();
    expect(refusal).toContain('an admin tenant token is required');
    // Which token, as the gRPC refusals say: the one tensormemctl takes.
    expect(refusal).toContain('tensormemctl: --token or $TENSORMEM_TOKEN');
    expect((await get('/api/snapshot', TOKENS.a)).status).toBe(403);
    expect((await get('/', 'wrong')).status).toBe(401);
    expect((await fetch(`${base}/api/snapshot?token=${TOKENS.admin}`)).status).toBe(200);
    const metrics = await get('/metrics');
    expect(metrics.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    // No answer may be sniffed into HTML, refusals and the JSON API included (the page always said so).
    for (const response of [anonymous, metrics, await get('/api/snapshot'), await get('/'), await get('/nope')]) {
      expect(response.headers.get('x-content-type-options'), response.url).toBe('nosniff');
    }
  });

  it('answers unknown paths, methods and intervals with the status and a message naming them', async () => {
    const missing = await get('/nope');
    expect(missing.status).toBe(404);
    expect(await missing.text()).toContain('"/nope"');
    const post = await fetch(`${base}/metrics`, { method: 'POST', headers: { authorization: `Bearer ${TOKENS.admin}` } });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    const interval = await get('/events?interval_ms=5');
    expect(interval.status).toBe(400);
    expect(await interval.text()).toBe('Expected an integer from 100 to 60000 for interval_ms but received "5"\n');
  });

  it('answers a request target that is no URL with 400, and logs nothing at warn or above for it', async () => {
    // Anyone who reaches the port can send it, before any token is checked: an error-level log line
    // (with a stack) per request would let them flood the operator's log.
    const [host, port] = base.slice('http://'.length).split(':');
    const logged = daemon.logs.length;
    const answers = await Promise.all(
      ['http://[', '//[', 'http://a:99999/'].map(
        (target) =>
          new Promise<string>((resolve, reject) => {
            const socket = connect(Number(port), host, () => socket.write(`GET ${target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`));
            let text = '';
            socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
            socket.on('end', () => resolve(text));
            socket.on('error', reject);
          }),
      ),
    );
    for (const answer of answers) {
      expect(answer).toMatch(/^HTTP\/1\.1 400 /);
      expect(answer).toContain('for the request target but received "');
    }
    expect(answers[0]).toContain('"http://["');
    await sleep(50);
    expect(daemon.logs.slice(logged).filter((entry) => (entry.level as number) >= 40)).toEqual([]);
  });

  it('reports pools, tenants, leases, RPC latencies and failures by reason, exactly, from live state', async () => {
    const before = await scrape();
    expect(sample(before, 'tensormem_pool_used_bytes', { pool: 'device:0' })).toBe(0);
    expect(sample(before, 'tensormem_pool_max_bytes', { pool: 'device:0' })).toBe(64 * MiB);
    expect(sample(before, 'tensormem_info', { version: '0.1.0', backend: 'host' })).toBe(1);
    expect(sample(before, 'tensormem_tenant_quota_bytes', { tenant: 'team-a', memory: 'device' })).toBe(MiB);
    expect(sample(before, 'tensormem_tenant_quota_bytes', { tenant: 'team-a', memory: 'host' })).toBe(2 * MiB);
    expect(sample(before, 'tensormem_tenant_max_leases', { tenant: 'team-a' })).toBe(4);
    expect(sample(before, 'tensormem_rpc_duration_seconds_count', { ...ALLOCATE, code: 'OK' })).toBeUndefined();

    const lease = await client.openLease({ tenantToken: TOKENS.a, labels: { job: 'metrics-test' } });
    const small = await lease.allocate({ dataType: 'DATA_TYPE_FLOAT32', shape: [1024] });
    const large = await lease.allocate({ dataType: 'DATA_TYPE_FLOAT32', shape: [256, 256] });
    const hostOnly = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [8192], placement: 'PLACEMENT_HOST_ONLY' });
    expect([Number(small.byte_size), Number(large.byte_size), Number(hostOnly.byte_size)]).toEqual([4096, 262144, 8192]);
    await lease.write(small.array_id, Buffer.alloc(4096, 7));
    expect((await lease.read(small.array_id)).length).toBe(4096);

    const quota = await failure(lease.allocate({ dataType: 'DATA_TYPE_FLOAT32', shape: [256, 1024] }));
    expect(quota.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(quota.reason).toBe('QUOTA_EXCEEDED');
    const admin = await client.openLease({ tenantToken: TOKENS.admin });
    const oom = await failure(admin.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [128 * MiB] }));
    expect(oom.reason).toBe('DEVICE_OUT_OF_MEMORY');

    const m = await scrape();
    const deviceUsed = 4096 + 262144;
    expect(sample(m, 'tensormem_pool_used_bytes', { pool: 'device:0' })).toBe(deviceUsed);
    expect(sample(m, 'tensormem_pool_peak_used_bytes', { pool: 'device:0' })).toBe(deviceUsed);
    expect(sample(m, 'tensormem_pool_live_blocks', { pool: 'device:0' })).toBe(2);
    expect(sample(m, 'tensormem_pool_waiting_allocations', { pool: 'device:0' })).toBe(0);
    expect(sample(m, 'tensormem_pool_allocations_total', { pool: 'device:0' })).toBe(2);
    // The quota refused before the pool was asked; the 128 MiB request reached the pool and its cap.
    expect(sample(m, 'tensormem_pool_failed_allocations_total', { pool: 'device:0' })).toBe(1);
    expect(sample(m, 'tensormem_pool_reserved_bytes', { pool: 'device:0' })).toBe(4 * MiB);
    expect(sample(m, 'tensormem_pool_largest_free_block_bytes', { pool: 'device:0' })).toBe(4 * MiB - deviceUsed);
    // Reading the device array gave it a host mirror (--mirror lazy).
    expect(sample(m, 'tensormem_pool_used_bytes', { pool: 'host' })).toBe(8192 + 4096);
    expect(sample(m, 'tensormem_host_category_bytes', { category: 'host_only' })).toBe(8192);
    expect(sample(m, 'tensormem_host_category_bytes', { category: 'mirror' })).toBe(4096);
    expect(sample(m, 'tensormem_tenant_used_bytes', { tenant: 'team-a', memory: 'device' })).toBe(deviceUsed);
    expect(sample(m, 'tensormem_tenant_device_used_bytes', { tenant: 'team-a', device: '0' })).toBe(deviceUsed);
    expect(sample(m, 'tensormem_tenant_used_bytes', { tenant: 'team-a', memory: 'host' })).toBe(8192 + 4096);
    expect(sample(m, 'tensormem_tenant_leases', { tenant: 'team-a' })).toBe(1);
    expect(sample(m, 'tensormem_tenant_leases', { tenant: 'ops' })).toBe(1);
    expect(sample(m, 'tensormem_leases')).toBe(2);
    expect(sample(m, 'tensormem_leases_opened_total')).toBe(2);
    expect(sample(m, 'tensormem_allocation_failures_total', { reason: 'QUOTA_EXCEEDED', method: 'AllocateArray' })).toBe(1);
    expect(sample(m, 'tensormem_allocation_failures_total', { reason: 'DEVICE_OUT_OF_MEMORY', method: 'AllocateArray' })).toBe(1);
    expect(sample(m, 'tensormem_rpc_duration_seconds_count', { ...ALLOCATE, code: 'OK' })).toBe(3);
    expect(sample(m, 'tensormem_rpc_duration_seconds_count', { ...ALLOCATE, code: 'RESOURCE_EXHAUSTED' })).toBe(2);
    expect(sample(m, 'tensormem_rpc_duration_seconds_bucket', { ...ALLOCATE, code: 'OK', le: '+Inf' })).toBe(3);
    expect(sample(m, 'tensormem_rpc_duration_seconds_sum', { ...ALLOCATE, code: 'OK' })).toBeGreaterThan(0);
    // Streams are timed too, from start to status.
    expect(sample(m, 'tensormem_rpc_duration_seconds_count', { service: 'tensormem.v1.ArrayService', method: 'WriteArray', code: 'OK' })).toBe(1);
    expect(sample(m, 'tensormem_rpc_duration_seconds_count', { service: 'tensormem.v1.ArrayService', method: 'ReadArray', code: 'OK' })).toBe(1);
    expect(sample(m, 'tensormem_rpc_duration_seconds_count', { service: 'tensormem.v1.LeaseService', method: 'OpenLease', code: 'OK' })).toBe(2);
    const rss = sample(m, 'tensormem_process_physical_bytes')!;
    expect(rss).toBeGreaterThan(10 * MiB);
    expect(sample(m, 'tensormem_process_max_physical_bytes')).toBeGreaterThan(rss);
    expect(sample(m, 'tensormem_process_heap_limit_bytes')).toBeGreaterThan(sample(m, 'tensormem_process_heap_used_bytes')!);

    // Freed memory shows at the next scrape; the peak stays.
    expect(await lease.free(small.array_id)).toBe(4096 + 4096); // the array and its mirror
    const afterFree = await scrape();
    expect(sample(afterFree, 'tensormem_pool_used_bytes', { pool: 'device:0' })).toBe(262144);
    expect(sample(afterFree, 'tensormem_pool_peak_used_bytes', { pool: 'device:0' })).toBe(deviceUsed);
    expect(sample(afterFree, 'tensormem_tenant_used_bytes', { tenant: 'team-a', memory: 'device' })).toBe(262144);
    expect(sample(afterFree, 'tensormem_pool_live_blocks', { pool: 'device:0' })).toBe(1);
    expect(sample(afterFree, 'tensormem_host_category_bytes', { category: 'mirror' })).toBe(0);

    // /api/snapshot carries the same blocks GetMemorySnapshot does, with their owners and the leases.
    const snapshot = (await (await get('/api/snapshot')).json()) as {
      snapshot: { pools: Array<{ pool: string; segments: Array<{ blocks: Array<{ free: boolean; bytes: number; lease_id: string; array_id: string; tenant: string }> }> }> };
      leases: Array<{ lease_id: string; labels: Record<string, string> }>;
    };
    const devicePool = snapshot.snapshot.pools.find((pool) => pool.pool === 'device:0')!;
    const liveBlocks = devicePool.segments.flatMap((segment) => segment.blocks).filter((block) => !block.free);
    expect(liveBlocks).toEqual([expect.objectContaining({ bytes: 262144, lease_id: lease.leaseId, array_id: large.array_id, tenant: 'team-a' })]);
    expect(snapshot.leases.find((entry) => entry.lease_id === lease.leaseId)?.labels).toEqual({ job: 'metrics-test' });

    await lease.close();
    await admin.close();
    const closed = await scrape();
    expect(sample(closed, 'tensormem_pool_used_bytes', { pool: 'device:0' })).toBe(0);
    expect(sample(closed, 'tensormem_pool_used_bytes', { pool: 'host' })).toBe(0);
    expect(sample(closed, 'tensormem_leases_closed_total', { reason: 'closed' })).toBe(2);
    expect(sample(closed, 'tensormem_leases')).toBe(0);
    // Tenants of the tenants file keep their rows with no lease and no bytes.
    expect(sample(closed, 'tensormem_tenant_quota_bytes', { tenant: 'team-a', memory: 'device' })).toBe(MiB);
    expect(sample(closed, 'tensormem_tenant_used_bytes', { tenant: 'team-a', memory: 'device' })).toBe(0);
    expect(sample(closed, 'tensormem_tenant_leases', { tenant: 'team-a' })).toBe(0);
    expect(sample(closed, 'tensormem_tenant_leases', { tenant: 'ops' })).toBe(0);
    expect((await client.memoryInfo(TOKENS.admin)).tenants.map((tenant) => tenant.tenant)).toEqual(['ops', 'team-a']);
  });

  it('counts leases reclaimed when they expire and leases evicted', async () => {
    const start = await scrape();
    const expiredBefore = sample(start, 'tensormem_leases_closed_total', { reason: 'expired' })!;
    const evictedBefore = sample(start, 'tensormem_leases_closed_total', { reason: 'evicted' })!;
    const shortLived = await client.openLease({ tenantToken: TOKENS.a, ttlSeconds: 1 });
    await shortLived.allocate({ dataType: 'DATA_TYPE_FLOAT32', shape: [1024] });
    const victim = await client.openLease({ tenantToken: TOKENS.a });
    expect(await client.evictLease(victim.leaseId, TOKENS.admin)).toBe(0);
    let expired = expiredBefore;
    for (let tries = 0; tries < 50 && expired === expiredBefore; tries++) {
      await sleep(100);
      expired = sample(await scrape(), 'tensormem_leases_closed_total', { reason: 'expired' })!;
    }
    const end = await scrape();
    expect(expired).toBe(expiredBefore + 1);
    expect(sample(end, 'tensormem_leases_closed_total', { reason: 'evicted' })).toBe(evictedBefore + 1);
    expect(sample(end, 'tensormem_pool_used_bytes', { pool: 'device:0' })).toBe(0);
    expect(sample(end, 'tensormem_rpc_duration_seconds_count', { service: 'tensormem.v1.LeaseService', method: 'EvictLease', code: 'OK' })).toBe(1);
  });

  it('streams snapshots as server-sent events', async () => {
    const response = await get('/events?interval_ms=100');
    expect(response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    const reader = response.body!.getReader();
    let text = '';
    while ((text.match(/event: snapshot/g) ?? []).length < 2) text += new TextDecoder().decode((await reader.read()).value);
    await reader.cancel();
    const first = JSON.parse(/data: (.*)\n/.exec(text)![1]) as { snapshot: { info: { backend: string } } };
    expect(first.snapshot.info.backend).toBe('host');
  });

  it("serves every metric of README's table, with exactly the label names it gives", async () => {
    // One data plane request, so that its histogram has a series whose labels can be checked.
    const listening = daemon.logs.find((entry) => entry.event === 'listening')!;
    expect((await fetch(`${listening.dataAddress as string}/v1/arrays/arr-none`)).status).toBe(401);
    const readme = readFileSync(join(__dirname, '..', '..', 'README.md'), 'utf8');
    const table = readme.slice(readme.indexOf('| metric | labels | what |'));
    const rows = table.slice(0, table.indexOf('\n\n')).split('\n').slice(2);
    expect(rows.length).toBeGreaterThan(15);
    const text = await (await get('/metrics')).text();
    const samples = parseMetrics(text);
    for (const row of rows) {
      const [, names, labels] = row.split('|');
      // Label names are the backticked words outside parentheses (those inside are example values).
      const expected = [...labels.replace(/\([^)]*\)/g, '').matchAll(/`(\w+)`/g)].map((m) => m[1]).sort();
      for (const [, name] of names.matchAll(/`(tensormem_\w+)`/g)) {
        const histogram = /\(histogram\)/.test(names);
        expect(text, name).toContain(`# TYPE ${name} ${histogram ? 'histogram' : name.endsWith('_total') ? 'counter' : 'gauge'}\n`);
        const series = samples.filter((s) => s.name === (histogram ? `${name}_count` : name));
        expect(series.length, name).toBeGreaterThan(0);
        for (const s of series) expect(Object.keys(s.labels).sort(), name).toEqual(expected);
      }
    }
  });
});

describe('bytes moved and data plane requests', () => {
  it('counts the bytes each transport moves each way, and every data plane request by method and status, exactly', async () => {
    const daemon = await startDaemon(['--data-listen', '127.0.0.1:0']);
    const client = new TensormemClient(daemon.tcpAddress);
    try {
      const listening = daemon.logs.find((entry) => entry.event === 'listening')!;
      const scrape = async () => parseMetrics(await (await fetch(`http://${listening.metricsAddress as string}/metrics`)).text());
      const moved = (m: Sample[], transport: string, direction: string) => sample(m, 'tensormem_array_transfer_bytes_total', { transport, direction });
      const requests = (m: Sample[], method: string, status: string) => sample(m, 'tensormem_data_plane_request_duration_seconds_count', { method, status });
      const before = await scrape();
      for (const transport of ['grpc', 'data_plane']) for (const direction of ['write', 'read']) expect(moved(before, transport, direction)).toBe(0);
      const lease = await client.openLease({ clientName: 'bytes-moved' });
      const big = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [3 * MiB] });
      const small = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [1000] });
      const bytes = randomBytes(3 * MiB);
      await lease.write(big.array_id, bytes); // 3 MiB: a PUT
      expect((await lease.read(big.array_id, MiB, MiB)).equals(bytes.subarray(MiB, 2 * MiB))).toBe(true); // a ranged GET
      await lease.write(small.array_id, bytes.subarray(0, 1000)); // under 1 MiB: WriteArray
      expect((await lease.read(small.array_id)).length).toBe(1000); // ReadArray
      await lease.writeGrpc(big.array_id, bytes.subarray(0, 5000), 7);
      const refused = await fetch(`${listening.dataAddress as string}/v1/arrays/${big.array_id}`, { method: 'PUT', headers: { authorization: `Bearer ${lease.token}`, 'content-length': String(4 * MiB) }, body: Buffer.alloc(4 * MiB) });
      expect(refused.status).toBe(416);
      expect((await fetch(`${listening.dataAddress as string}/v1/arrays/${big.array_id}`, { method: 'DELETE', headers: { authorization: `Bearer ${lease.token}` } })).status).toBe(405);
      const after = await scrape();
      expect(moved(after, 'data_plane', 'write')).toBe(3 * MiB);
      expect(moved(after, 'data_plane', 'read')).toBe(MiB);
      expect(moved(after, 'grpc', 'write')).toBe(1000 + 5000);
      expect(moved(after, 'grpc', 'read')).toBe(1000);
      expect(requests(after, 'PUT', '200')).toBe(1);
      expect(requests(after, 'GET', '206')).toBe(1);
      expect(requests(after, 'PUT', '416')).toBe(1);
      // Any other method is one series, whatever a client sends.
      expect(requests(after, 'other', '405')).toBe(1);

      // Only the body bytes that landed count: a piece that comes after its array was freed is refused, not written.
      const doomed = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [MiB] });
      const landed = 10_000;
      const put = request(`${listening.dataAddress as string}/v1/arrays/${doomed.array_id}`, { method: 'PUT', headers: { authorization: `Bearer ${lease.token}`, 'content-length': String(MiB) } });
      const answer = new Promise<number>((resolve, reject) => {
        put.on('response', (response) => {
          response.resume();
          resolve(response.statusCode!);
        });
        put.on('error', reject);
      });
      const writtenNow = async () => moved(await scrape(), 'data_plane', 'write')! - 3 * MiB;
      put.write(Buffer.alloc(landed, 1));
      for (let tries = 0; tries < 50 && (await writtenNow()) !== landed; tries++) await sleep(20);
      expect(await writtenNow()).toBe(landed);
      expect(await lease.free(doomed.array_id)).toBe(MiB);
      put.write(Buffer.alloc(landed, 2));
      expect(await answer).toBe(409);
      put.destroy();
      expect(await writtenNow()).toBe(landed);
      await lease.close();
    } finally {
      client.close();
      expect(await daemon.stop()).toBe(0);
    }
  });
});

describe('refusals on the HTTP data plane', () => {
  it('counts a data plane GET refused for want of host memory in tensormem_allocation_failures_total, as the same refusal of ReadArray is', async () => {
    const token = randomBytes(24).toString('hex');
    const tenantsPath = writeTenantsFile(`tenants:\n  - name: small-host\n    token_sha256: "${tokenSha256(token)}"\n    quota: { host: 1M }\n    admin: true\n`);
    const daemon = await startDaemon(['--tenants', tenantsPath, '--data-listen', '127.0.0.1:0']);
    const client = new TensormemClient(daemon.tcpAddress);
    try {
      const listening = daemon.logs.find((entry) => entry.event === 'listening')!;
      const scrape = async () => parseMetrics(await (await fetch(`http://${listening.metricsAddress as string}/metrics`, { headers: { authorization: `Bearer ${token}` } })).text());
      const lease = await client.openLease({ tenantToken: token });
      // Reading a device array takes a host mirror of its size: 2 MiB, over the tenant's 1 MiB host quota.
      const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [2 * MiB] });
      const get = await fetch(`${listening.dataAddress as string}/v1/arrays/${array.array_id}`, { headers: { authorization: `Bearer ${lease.token}` } });
      expect(get.status).toBe(507);
      expect(((await get.json()) as { reason: string }).reason).toBe('QUOTA_EXCEEDED');
      expect((await failure(lease.readGrpc(array.array_id))).reason).toBe('QUOTA_EXCEEDED');
      const m = await scrape();
      expect(sample(m, 'tensormem_allocation_failures_total', { reason: 'QUOTA_EXCEEDED', method: 'DataPlaneGet' })).toBe(1);
      expect(sample(m, 'tensormem_allocation_failures_total', { reason: 'QUOTA_EXCEEDED', method: 'ReadArray' })).toBe(1);
      // A refusal for another reason (no such array) is not one for memory.
      expect((await fetch(`${listening.dataAddress as string}/v1/arrays/arr-missing`, { headers: { authorization: `Bearer ${lease.token}` } })).status).toBe(404);
      expect(parseMetrics(await (await fetch(`http://${listening.metricsAddress as string}/metrics`, { headers: { authorization: `Bearer ${token}` } })).text()).filter((s) => s.name === 'tensormem_allocation_failures_total').length).toBe(2);
      await lease.close();
    } finally {
      client.close();
      expect(await daemon.stop()).toBe(0);
    }
  });
});

describe('/events and a tenants file reload', () => {
  it('counts tenants-file reloads taken and refused, and says whether the last one took the file and when the tenants in force were read', async () => {
    const tenantsPath = writeTenantsFile(`tenants:\n  - name: ops\n    token_sha256: "${tokenSha256(TOKENS.admin)}"\n    admin: true\n`);
    const good = readFileSync(tenantsPath, 'utf8');
    const daemon = await startDaemon(['--tenants', tenantsPath]);
    try {
      const base = `http://${daemon.logs.find((entry) => entry.event === 'listening')!.metricsAddress as string}`;
      const scrapeOf = async () => parseMetrics(await (await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${TOKENS.admin}` } })).text());
      const reload = async (text: string, event: string) => {
        const before = daemon.logs.filter((entry) => entry.event === event).length;
        writeFileSync(tenantsPath, text);
        daemon.child.kill('SIGHUP');
        while (daemon.logs.filter((entry) => entry.event === event).length === before) await sleep(20);
        return scrapeOf();
      };
      const started = await scrapeOf();
      expect(sample(started, 'tensormem_tenants_reloads_total', { result: 'reloaded' })).toBe(0);
      expect(sample(started, 'tensormem_tenants_reloads_total', { result: 'refused' })).toBe(0);
      expect(sample(started, 'tensormem_tenants_last_reload_successful')).toBe(1);
      const loadedAtStart = sample(started, 'tensormem_tenants_loaded_timestamp_seconds')!;
      expect(Math.abs(loadedAtStart - Date.now() / 1000)).toBeLessThan(60);

      // A refused file: counted, the gauge says so, and the tenants in force are still those read at start.
      const refused = await reload(`${good}  - name: bad\n    token_sha256: "${tokenSha256('x')}"\n    quota: { host: 8Q }\n`, 'tenants_reload_failed');
      expect(sample(refused, 'tensormem_tenants_reloads_total', { result: 'refused' })).toBe(1);
      expect(sample(refused, 'tensormem_tenants_reloads_total', { result: 'reloaded' })).toBe(0);
      expect(sample(refused, 'tensormem_tenants_last_reload_successful')).toBe(0);
      expect(sample(refused, 'tensormem_tenants_loaded_timestamp_seconds')).toBe(loadedAtStart);

      await sleep(1100);
      const taken = await reload(good, 'tenants_reloaded');
      expect(sample(taken, 'tensormem_tenants_reloads_total', { result: 'reloaded' })).toBe(1);
      expect(sample(taken, 'tensormem_tenants_reloads_total', { result: 'refused' })).toBe(1);
      expect(sample(taken, 'tensormem_tenants_last_reload_successful')).toBe(1);
      expect(sample(taken, 'tensormem_tenants_loaded_timestamp_seconds')!).toBeGreaterThan(loadedAtStart);
    } finally {
      expect(await daemon.stop()).toBe(0);
    }
  });

  it('ends an /events stream whose token a reload made no longer admin, as a new request would be refused', async () => {
    const tokens = { admin: randomBytes(24).toString('hex'), other: randomBytes(24).toString('hex') };
    const tenantsFile = (admin: boolean) =>
      `tenants:\n  - name: ops\n    token_sha256: "${tokenSha256(tokens.admin)}"\n    admin: ${admin}\n  - name: keeper\n    token_sha256: "${tokenSha256(tokens.other)}"\n    admin: true\n`;
    const tenantsPath = writeTenantsFile(tenantsFile(true));
    const daemon = await startDaemon(['--tenants', tenantsPath]);
    try {
      const base = `http://${daemon.logs.find((entry) => entry.event === 'listening')!.metricsAddress as string}`;
      const stream = { snapshots: 0, ended: false };
      const call = request(`${base}/events?interval_ms=100&token=${tokens.admin}`, (response) => {
        response.on('data', (chunk: Buffer) => (stream.snapshots += chunk.toString().split('event: snapshot').length - 1));
        response.on('end', () => (stream.ended = true));
      });
      call.end();
      while (stream.snapshots < 2) await sleep(20);
      writeFileSync(tenantsPath, tenantsFile(false));
      daemon.child.kill('SIGHUP');
      while (!daemon.logs.some((entry) => entry.event === 'tenants_reloaded')) await sleep(20);
      expect((await fetch(`${base}/api/snapshot?token=${tokens.admin}`)).status).toBe(403);
      for (let tries = 0; tries < 25 && !stream.ended; tries++) await sleep(20);
      const seen = stream.snapshots;
      await sleep(300);
      call.destroy();
      expect(stream.ended).toBe(true);
      expect(stream.snapshots).toBe(seen);
      // A live lease's token is known (its tenant's): 403 as for a tenant token that is not an admin's; once its lease ends, 401.
      const client = new TensormemClient(daemon.tcpAddress);
      try {
        const lease = await client.openLease({ tenantToken: tokens.admin });
        expect((await fetch(`${base}/api/snapshot?token=${lease.token}`)).status).toBe(403);
        await lease.close();
        expect((await fetch(`${base}/api/snapshot?token=${lease.token}`)).status).toBe(401);
      } finally {
        client.close();
      }
    } finally {
      expect(await daemon.stop()).toBe(0);
    }
  });
});

describe('--metrics-listen values', () => {
  it('refuses a malformed address, and a non-loopback one in open mode, naming the flag', async () => {
    const malformed = await runTensormemd(['--backend', 'host', '--metrics-listen', 'localhost']);
    expect(malformed.code).toBe(2);
    expect(malformed.stderr).toContain('Expected HOST:PORT (port 0 picks one) or off for --metrics-listen but received "localhost"');
    const exposed = await runTensormemd(['--backend', 'host', '--emulated-device', '2G', '--listen', '127.0.0.1:0', '--metrics-listen', '0.0.0.0:0']);
    expect(exposed.code).toBe(1);
    expect(exposed.stderr).toContain('Expected a loopback address when no --tenants file is given (open mode) for --metrics-listen but received "0.0.0.0:0"');
  });

  it('open mode: served without a token to loopback names only (no DNS rebinding)', async () => {
    const daemon = await startDaemon();
    try {
      const address = daemon.logs.find((entry) => entry.event === 'listening')!.metricsAddress as string;
      const port = address.split(':')[1];
      const statusWithHost = (host: string) =>
        new Promise<{ status: number; body: string }>((resolve, reject) => {
          const call = request(`http://${address}/api/snapshot`, { headers: { host } }, (response) => {
            let body = '';
            response.on('data', (chunk) => (body += chunk));
            response.on('end', () => resolve({ status: response.statusCode!, body }));
          });
          call.on('error', reject);
          call.end();
        });
      expect((await statusWithHost(`localhost:${port}`)).status).toBe(200);
      expect((await statusWithHost(`127.0.0.1:${port}`)).status).toBe(200);
      expect(await statusWithHost(`attacker.example:${port}`)).toEqual({ status: 403, body: `Host "attacker.example:${port}" is not a loopback name: open mode serves localhost, 127.0.0.1 and [::1] only\n` });
    } finally {
      expect(await daemon.stop()).toBe(0);
    }
  });

  it('open mode: a client-chosen tenant name leaves GetMemoryInfo and /metrics once it holds nothing and has no lease', async () => {
    const daemon = await startDaemon();
    const client = new TensormemClient(daemon.tcpAddress);
    try {
      const address = daemon.logs.find((entry) => entry.event === 'listening')!.metricsAddress as string;
      const tenantSeries = async () =>
        parseMetrics(await (await fetch(`http://${address}/metrics`)).text())
          .filter((s) => s.name.startsWith('tensormem_tenant_'))
          .map((s) => s.labels.tenant);
      const names = Array.from({ length: 20 }, (_, i) => `passing-${i}`);
      for (const tenant of names) {
        const lease = await client.openLease({ tenant, clientName: 'x' });
        await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [16] });
        await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [16], placement: 'PLACEMENT_HOST_ONLY' });
        // Read while open: a report must not make the account outlive the lease.
        expect((await client.memoryInfo()).tenants.find((t) => t.tenant === tenant)).toMatchObject({ leases: 1 });
        expect(await tenantSeries()).toContain(tenant);
        await lease.close();
      }
      // A lease with nothing allocated, and one still open, keep their rows only while open.
      const idle = await client.openLease({ tenant: 'idle', clientName: 'x' });
      const stays = await client.openLease({ tenant: 'stays', clientName: 'x' });
      await stays.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [16] });
      expect((await client.memoryInfo()).tenants.map((t) => t.tenant)).toEqual(['idle', 'stays']);
      await idle.close();
      expect((await client.memoryInfo()).tenants.map((t) => t.tenant)).toEqual(['stays']);
      expect(new Set(await tenantSeries())).toEqual(new Set(['stays']));
      await stays.close();
      expect((await client.memoryInfo()).tenants).toEqual([]);
      expect(await tenantSeries()).toEqual([]);
      // A name used again starts from zero.
      const again = await client.openLease({ tenant: 'passing-0', clientName: 'x' });
      await again.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [16] });
      expect((await client.memoryInfo()).tenants).toEqual([expect.objectContaining({ tenant: 'passing-0', leases: 1, device_used_bytes: expect.anything() })]);
      await again.close();
      expect((await client.memoryInfo()).tenants).toEqual([]);
    } finally {
      client.close();
      expect(await daemon.stop()).toBe(0);
    }
  });

  it('/events skips ticks while a client has not taken the last snapshot, and serves at most 16 streams', async () => {
    const daemon = await startDaemon();
    const client = new TensormemClient(daemon.tcpAddress);
    try {
      const address = daemon.logs.find((entry) => entry.event === 'listening')!.metricsAddress as string;
      const [host, port] = address.split(':');
      // 100 leases with the largest labels allowed: each snapshot is about 2 MiB.
      const labels = Object.fromEntries(Array.from({ length: 64 }, (_, i) => [`${i}`.padStart(63, 'k'), 'v'.repeat(256)]));
      for (let i = 0; i < 100; i++) await client.openLease({ clientName: `big-${i}`, labels });

      // A client that reads nothing for 3 s (30 ticks of 100 ms), then reads for 300 ms.
      const slow = connect(Number(port), host, () => slow.write(`GET /events?interval_ms=100 HTTP/1.1\r\nHost: localhost:${port}\r\n\r\n`));
      slow.pause();
      await sleep(3000);
      let snapshots = 0;
      slow.on('data', (chunk: Buffer) => (snapshots += chunk.toString('latin1').split('event: snapshot').length - 1));
      slow.resume();
      await sleep(300);
      slow.destroy();
      // Buffering every tick delivered 30 and more here; skipping leaves what the socket took before it filled, plus the last 300 ms.
      expect(snapshots).toBeGreaterThan(0);
      expect(snapshots).toBeLessThan(15);

      const open = (): Promise<{ status: number; body: string; close: () => void }> =>
        new Promise((resolve, reject) => {
          const call = request(`http://${address}/events?interval_ms=60000`, (response) => {
            if (response.statusCode === 200) {
              response.once('data', () => resolve({ status: 200, body: '', close: () => call.destroy() }));
              return;
            }
            let body = '';
            response.on('data', (chunk) => (body += chunk));
            response.on('end', () => resolve({ status: response.statusCode!, body, close: () => {} }));
          });
          call.on('error', reject);
          call.end();
        });
      const streams = [];
      for (let i = 0; i < 16; i++) streams.push(await open());
      expect(streams.map((stream) => stream.status)).toEqual(Array(16).fill(200));
      const refused = await open();
      expect(refused.status).toBe(503);
      expect(JSON.parse(refused.body)).toEqual({ error: '16 /events streams are open, the most served at once: close one, or poll /api/snapshot', max_event_streams: 16 });
      streams.pop()!.close();
      let again = await open();
      for (let tries = 0; tries < 20 && again.status !== 200; tries++) {
        await sleep(50);
        again = await open();
      }
      expect(again.status).toBe(200);
      again.close();
      for (const stream of streams) stream.close();
    } finally {
      client.close();
      expect(await daemon.stop()).toBe(0);
    }
  });

  it('serves nothing with off, and says so in the listening line', async () => {
    const daemon = await startDaemon(['--metrics-listen', 'off']);
    try {
      const listening = daemon.logs.find((entry) => entry.event === 'listening')!;
      expect(listening).not.toHaveProperty('metricsAddress');
      expect(listening.msg).not.toContain('status page');
    } finally {
      expect(await daemon.stop()).toBe(0);
    }
  });
});
