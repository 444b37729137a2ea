/**
 * AcquireCudnnWorkspace over gRPC on the host backend (no cuDNN path: sizes from requested_bytes), the
 * grow-only scratch in real pool memory, quotas, bad descriptors, lease close; the bounded retention of
 * out-of-scope workspace arrays; lease summaries that count workspace buffers. GetConfig's cudnn_version.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { CudnnWorkspaceRequest, LeaseSession, TensormemClient } from '../../src/client/tensormem-client';
import { RETIRED_ARRAYS_KEPT } from '../../src/leases/lease';
import { DaemonProcess, startDaemon } from '../helpers/daemon-process';
import { failure } from '../helpers/thrown';
import { tokenSha256, writeTenantsFile } from '../helpers/tenants-file';

const MiB = 1024 * 1024;

/** A ResNet-style 3×3 convolution. */
const CONV = { input_dims: [32, 64, 56, 56], filter_dims: [128, 64, 3, 3], pads: [1, 1], strides: [1, 1], dilations: [1, 1], data_type: 'DATA_TYPE_FLOAT32' as const };

function request(requestedBytes: number, extra: Partial<CudnnWorkspaceRequest> = {}): CudnnWorkspaceRequest {
  return { mode: 'CUDNN_ALGO_MODE_PREFER_FASTEST', convolution: CONV, requested_bytes: requestedBytes, ...extra };
}

describe('AcquireCudnnWorkspace on the host backend', () => {
  let daemon: DaemonProcess;
  let client: TensormemClient;
  let lease: LeaseSession;
  const deviceUsed = async () => (await client.memoryInfo()).devices[0].used_bytes;

  beforeAll(async () => {
    daemon = await startDaemon(['--maxbytes', '64M', '--pool-chunk', '4M', '--cudnn-library', '/nonexistent/libcudnn.so.9']);
    client = new TensormemClient(daemon.tcpAddress);
    lease = await client.openLease({ clientName: 'cudnn' });
  });

  afterAll(async () => {
    client?.close();
    expect(await daemon?.stop()).toBe(0);
  });

  it('GetConfig shows the cuDNN state: not loaded, naming the path tried (or the version, where a system cuDNN exists)', async () => {
    const config = await client.config();
    const cudnn = config.values.find((value) => value.name === 'cudnn_version');
    expect(cudnn?.source).toBe('derived');
    if (cudnn!.value.startsWith('not loaded')) expect(cudnn!.value).toContain('/nonexistent/libcudnn.so.9');
    else expect(cudnn!.value).toMatch(/^\d+\.\d+\.\d+ \(/);
    expect(config.values.find((value) => value.name === 'cudnn-library')).toMatchObject({ value: '/nonexistent/libcudnn.so.9', source: 'flag' });
  });

  it('sizes the scratch from requested_bytes, says why, and takes it from the device pool as a usable array', async () => {
    const before = await deviceUsed();
    const reply = await lease.acquireCudnnWorkspace(request(3 * MiB));
    expect(reply).toMatchObject({ workspace_bytes: 3 * MiB, size_source: 'request bytes', algorithm: '', fell_back: false, grew: false, candidates: [] });
    expect(reply.reason).toMatch(/^cuDNN (not loaded|.* the host backend has no CUDA device)/);
    expect(reply.scratch).toMatchObject({ byte_size: 3 * MiB, placement: 'PLACEMENT_DEVICE', data_type: 'DATA_TYPE_UINT8', label: 'cudnn-scratch', attached: false, held_bytes: 3 * MiB });
    expect(reply.device_offset % 256).toBe(0);
    expect((await deviceUsed()) - before).toBe(3 * MiB);
    // It is an ordinary array of the lease: bytes go in and come back.
    const data = randomBytes(4096);
    await lease.write(reply.scratch!.array_id, data, 1000);
    expect((await lease.read(reply.scratch!.array_id, 1000, 4096)).equals(data)).toBe(true);
  });

  it('is grow-only per lease and device: smaller requests get the same scratch, a larger one replaces it', async () => {
    const first = (await lease.acquireCudnnWorkspace(request(MiB))).scratch!;
    expect(first.byte_size).toBe(3 * MiB);
    const used = await deviceUsed();
    const same = await lease.acquireCudnnWorkspace(request(2 * MiB));
    expect(same).toMatchObject({ grew: false, workspace_bytes: 2 * MiB });
    expect(same.scratch!.array_id).toBe(first.array_id);
    expect(await deviceUsed()).toBe(used);

    const grown = await lease.acquireCudnnWorkspace(request(5 * MiB));
    expect(grown.grew).toBe(true);
    expect(grown.scratch!.byte_size).toBe(5 * MiB);
    expect(grown.scratch!.array_id).not.toBe(first.array_id);
    expect((await deviceUsed()) - used).toBe(2 * MiB); // the old 3 MiB went back
    expect((await failure(lease.get(first.array_id))).code).toBe(status.NOT_FOUND);

    // NO_WORKSPACE needs zero bytes and keeps the scratch as it is.
    const none = await lease.acquireCudnnWorkspace({ mode: 'CUDNN_ALGO_MODE_NO_WORKSPACE', convolution: CONV });
    expect(none).toMatchObject({ workspace_bytes: 0, size_source: 'no workspace', grew: false });
    expect(none.scratch!.array_id).toBe(grown.scratch!.array_id);
    // Another lease has its own scratch; a fresh lease with NO_WORKSPACE holds none.
    const other = await client.openLease();
    expect((await other.acquireCudnnWorkspace({ mode: 'CUDNN_ALGO_MODE_NO_WORKSPACE' })).scratch).toBeNull();
    expect((await other.acquireCudnnWorkspace(request(MiB))).scratch!.array_id).not.toBe(grown.scratch!.array_id);
    await other.close();
  });

  it('USER_SPECIFIED takes the named algorithm for the direction', async () => {
    const reply = await lease.acquireCudnnWorkspace(request(MiB, { mode: 'CUDNN_ALGO_MODE_USER_SPECIFIED', algorithm: 'CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3', convolution: { ...CONV, direction: 'CONVOLUTION_DIRECTION_BACKWARD_FILTER' } }));
    expect(reply).toMatchObject({ algorithm: 'ALGO_3', workspace_bytes: MiB, size_source: 'request bytes' });
  });

  it('refuses bad requests with INVALID_ARGUMENT naming the field and value, and takes nothing', async () => {
    const used = await deviceUsed();
    const arrays = (await lease.list()).length;
    const cases: Array<[CudnnWorkspaceRequest, string, string]> = [
      [request(MiB, { convolution: { ...CONV, input_dims: [32, 64, 56] } }), 'convolution.input_dims', '3 dims'],
      [request(MiB, { convolution: { ...CONV, input_dims: [32, 64, 0, 56] } }), 'convolution.input_dims[2]', 'received 0'],
      [request(MiB, { convolution: { ...CONV, strides: [1, 0] } }), 'convolution.strides[1]', 'received 0'],
      [request(MiB, { convolution: { ...CONV, filter_dims: [128, 32, 3, 3] } }), 'convolution.filter_dims[1]', 'received 32'],
      [request(MiB, { convolution: { ...CONV, filter_dims: [128, 64, 99, 3] } }), 'convolution.filter_dims[2]', 'received 99'],
      [request(MiB, { convolution: { ...CONV, data_type: 'DATA_TYPE_INT64' } }), 'convolution.data_type', 'DATA_TYPE_INT64'],
      [request(MiB, { mode: 'CUDNN_ALGO_MODE_USER_SPECIFIED', algorithm: 'FASTEST_PLEASE' }), 'algorithm', '"FASTEST_PLEASE"'],
      [request(MiB, { algorithm: 'FFT' }), 'algorithm', '"FFT"'],
      [request(MiB, { device: 3 }), 'device', 'received 3'],
      [request(MiB, { mode: 9 as never }), 'mode', '9'],
    ];
    for (const [bad, field, received] of cases) {
      const error = await failure(lease.acquireCudnnWorkspace(bad));
      expect(error.code, field).toBe(status.INVALID_ARGUMENT);
      expect(error.errorMetadata.field).toBe(field);
      expect(error.details).toContain(received);
    }
    expect(await deviceUsed()).toBe(used);
    expect((await lease.list()).length).toBe(arrays);
  });

  it('refuses a scratch past the pool cap with the numbers and keeps the old one; growth counts the old scratch as given back', async () => {
    const small = await client.openLease();
    const held = (await small.acquireCudnnWorkspace(request(40 * MiB))).scratch!;
    // 40 MiB held of 64 MiB (minus others' use): growing to 52 MiB fits only because the 40 go back first.
    const grown = await small.acquireCudnnWorkspace(request(52 * MiB));
    expect(grown.grew).toBe(true);
    const used = await deviceUsed();
    const refused = await failure(small.acquireCudnnWorkspace(request(80 * MiB)));
    expect(refused.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(refused.reason).toBe('DEVICE_OUT_OF_MEMORY');
    expect(refused.details).toContain("Can't allocate [DEVICE] memory: 83886080 bytes (80.00 MiB) on device 0: pool cap (maxbytes) 67108864 bytes (64.00 MiB)");
    // The used bytes are GetMemoryInfo's, the scratch that would go back first said apart.
    expect(refused.errorMetadata).toMatchObject({ used_bytes: String(used), given_back_bytes: String(52 * MiB) });
    expect(refused.details).toContain(`used ${used} bytes`);
    expect(refused.details).toContain('; the cuDNN scratch it replaces, 54525952 bytes (52.00 MiB) of the used bytes, is given back first');
    expect(await deviceUsed()).toBe(used);
    expect((await small.get(grown.scratch!.array_id)).byte_size).toBe(52 * MiB);
    expect(held.array_id).not.toBe(grown.scratch!.array_id);
    // Closing the lease gives the scratch back.
    expect(await small.close()).toBe(52 * MiB);
    expect(used - (await deviceUsed())).toBe(52 * MiB);
  });

  it("a device array refused beside the lease's scratch says how much the scratch holds and that NO_WORKSPACE needs none", async () => {
    // The seed, on "CUDA out of memory": "Switch to NO_WORKSPACE cuDNN algo mode if using cuDNN, as
    // PREFER_FASTEST allocates large workspace buffers". The refusal named only the pool's used bytes.
    const trainer = await client.openLease({ clientName: 'scratch-oom' });
    const scratch = (await trainer.acquireCudnnWorkspace(request(40 * MiB))).scratch!;
    const refused = await failure(trainer.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [40 * MiB] }));
    expect([refused.code, refused.reason]).toEqual([status.RESOURCE_EXHAUSTED, 'DEVICE_OUT_OF_MEMORY']);
    expect(refused.details).toContain(
      "; this lease's cuDNN scratch (AcquireCudnnWorkspace) holds 41943040 bytes (40.00 MiB) of the used bytes: CUDNN_ALGO_MODE_NO_WORKSPACE needs none, and FreeArray of it gives it back",
    );
    expect(refused.errorMetadata).toMatchObject({ cudnn_scratch_bytes: String(40 * MiB), cudnn_scratch_array_id: scratch.array_id });
    // Another lease's refusal names no scratch of its own.
    const other = await client.openLease({ clientName: 'no-scratch' });
    const plain = await failure(other.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [40 * MiB] }));
    expect(plain.reason).toBe('DEVICE_OUT_OF_MEMORY');
    expect(plain.details).not.toContain('cuDNN scratch');
    expect(plain.errorMetadata.cudnn_scratch_bytes).toBeUndefined();
    // The advice holds: with the scratch freed, the array fits.
    await trainer.free(scratch.array_id);
    expect((await trainer.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [40 * MiB] })).byte_size).toBe(40 * MiB);
    await other.close();
    await trainer.close();
  });

  it("a DuplicateArray refused beside the lease's scratch says how much the scratch holds, as AllocateArray's refusal does", async () => {
    const trainer = await client.openLease({ clientName: 'scratch-dup-oom' });
    const scratch = (await trainer.acquireCudnnWorkspace(request(40 * MiB))).scratch!;
    // A source that fits in what is left, and whose copy does not fit beside it.
    const free = 64 * MiB - (await deviceUsed());
    const source = await trainer.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [Math.floor(free / 2 / MiB + 1) * MiB] });
    const used = await deviceUsed();
    const refused = await failure(trainer.duplicate(source.array_id));
    expect([refused.code, refused.reason]).toEqual([status.RESOURCE_EXHAUSTED, 'DEVICE_OUT_OF_MEMORY']);
    expect(refused.details).toContain(
      "; this lease's cuDNN scratch (AcquireCudnnWorkspace) holds 41943040 bytes (40.00 MiB) of the used bytes: CUDNN_ALGO_MODE_NO_WORKSPACE needs none, and FreeArray of it gives it back",
    );
    expect(refused.errorMetadata).toMatchObject({ cudnn_scratch_bytes: String(40 * MiB), cudnn_scratch_array_id: scratch.array_id });
    expect(await deviceUsed()).toBe(used);
    // The advice holds: with the scratch freed, the copy fits.
    await trainer.free(scratch.array_id);
    expect((await trainer.duplicate(source.array_id)).byte_size).toBe(source.byte_size);
    await trainer.close();
  });

  it('lease summaries count workspace buffers and the scratch; closing the lease gives every byte back', async () => {
    const owner = await client.openLease({ clientName: 'summary' });
    const empty = await deviceUsed();
    const ws = await owner.createWorkspace('SUMMARY_WS', { initial_size: 2 * MiB, learning_policy: 'LEARNING_POLICY_NONE', allocation_policy: 'ALLOCATION_POLICY_STRICT' });
    const hostWs = await owner.createWorkspace('SUMMARY_HOST', { initial_size: MiB, learning_policy: 'LEARNING_POLICY_NONE', mirroring_policy: 'MIRRORING_POLICY_HOST_ONLY' });
    await owner.acquireCudnnWorkspace(request(MiB));
    const detached = await owner.allocate({ dataType: 'DATA_TYPE_FLOAT32', shape: [1000] });
    const summary = (await client.listLeases()).find((entry) => entry.lease_id === owner.leaseId)!;
    const aligned = (bytes: number) => Math.ceil(bytes / 256) * 256;
    expect(ws.held_bytes).toBe(aligned(2 * MiB + 1024));
    expect(summary.device_bytes).toBe(ws.held_bytes + MiB + aligned(4000));
    expect(summary.host_bytes).toBe(hostWs.held_bytes);
    expect(summary.array_count).toBe(2);
    expect(detached.held_bytes).toBe(aligned(4000));
    expect((await deviceUsed()) - empty).toBe(summary.device_bytes);
    expect(await owner.close()).toBe(summary.device_bytes + summary.host_bytes);
    expect(await deviceUsed()).toBe(empty);
  });

  it(`retires arrays of past workspace generations from the lease's map, answering ND4J's message for the last ${RETIRED_ARRAYS_KEPT} ids`, async () => {
    const trainer = await client.openLease({ clientName: 'retention' });
    const ws = await trainer.createWorkspace('RETAIN_WS', { initial_size: 4 * MiB, learning_policy: 'LEARNING_POLICY_NONE' });
    const allocateInCycle = async (count: number) => {
      await trainer.enterWorkspace(ws.workspace_id);
      const ids: string[] = [];
      for (let start = 0; start < count; start += 100) {
        const batch = await Promise.all(Array.from({ length: Math.min(100, count - start) }, () => trainer.allocate({ dataType: 'DATA_TYPE_FLOAT32', shape: [4] })));
        ids.push(...batch.map((array) => array.array_id));
      }
      return ids;
    };
    const first = await allocateInCycle(RETIRED_ARRAYS_KEPT + 50);
    await trainer.leaveWorkspace(ws.workspace_id);
    // Left but not yet re-entered: same generation, still listed, "leaked".
    expect((await trainer.list()).length).toBe(first.length);
    expect((await failure(trainer.read(first[0]))).details).toContain('Cannot read array: Array uses leaked workspace pointer from workspace RETAIN_WS');
    // The next cycle (generation 2) retires all of them; the workspace stays open while we look.
    const second = await allocateInCycle(10);
    const listed = (await trainer.list()).map((array) => array.array_id);
    expect(listed.sort()).toEqual([...second].sort());
    expect((await client.listLeases()).find((entry) => entry.lease_id === trainer.leaseId)!.array_count).toBe(10);
    // The newest retired ids still answer ND4J's message…
    const outdated = await failure(trainer.read(first[first.length - 1]));
    expect(outdated.code).toBe(status.FAILED_PRECONDITION);
    expect(outdated.reason).toBe('ARRAY_OUT_OF_SCOPE');
    expect(outdated.details).toContain('Array outdated workspace pointer from workspace RETAIN_WS (array generation 1, current workspace generation 2)');
    expect((await failure(trainer.duplicate(first[60]))).reason).toBe('ARRAY_OUT_OF_SCOPE');
    // …the oldest beyond the bound are forgotten.
    expect((await failure(trainer.read(first[0]))).code).toBe(status.NOT_FOUND);
    expect((await failure(trainer.read(first[49]))).code).toBe(status.NOT_FOUND);
    // Freeing a retired id works and forgets it; destroying the workspace retires the rest as "released".
    expect(await trainer.free(first[100])).toBe(0);
    expect((await failure(trainer.get(first[100]))).code).toBe(status.NOT_FOUND);
    await trainer.leaveWorkspace(ws.workspace_id);
    await trainer.destroyWorkspace(ws.workspace_id);
    expect(await trainer.list()).toEqual([]);
    expect((await failure(trainer.read(second[0]))).details).toContain('Array memory was released: its workspace was destroyed');
    await trainer.close();
  });
});

/** A tenant's device quota limits the scratch (and PREFER_FASTEST's budget) as it does any allocation. */
describe('AcquireCudnnWorkspace under a tenant quota', () => {
  const token = randomBytes(24).toString('hex');
  let daemon: DaemonProcess;
  let client: TensormemClient;

  beforeAll(async () => {
    const tenantsPath = writeTenantsFile(`tenants:\n  - name: small\n    token_sha256: "${tokenSha256(token)}"\n    quota: { device: 8M, host: 4M }\n`);
    daemon = await startDaemon(['--tenants', tenantsPath, '--maxbytes', '64M', '--pool-chunk', '4M']);
    client = new TensormemClient(daemon.tcpAddress);
  });

  afterAll(async () => {
    client?.close();
    expect(await daemon?.stop()).toBe(0);
  });

  it('grows within the quota, counting the old scratch as given back, and refuses past it with QUOTA_EXCEEDED', async () => {
    const lease = await client.openLease({ tenantToken: token });
    await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [MiB] });
    const first = await lease.acquireCudnnWorkspace(request(5 * MiB));
    // 1 + 5 held; 7 more fits the 8 MiB quota only with the 5 given back.
    const grown = await lease.acquireCudnnWorkspace(request(7 * MiB));
    expect(grown.grew).toBe(true);
    const refused = await failure(lease.acquireCudnnWorkspace(request(7 * MiB + 1)));
    expect(refused.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(refused.reason).toBe('QUOTA_EXCEEDED');
    // The tenant's used bytes as GetMemoryInfo shows them (the scratch included), and the scratch that
    // would go back first apart: "used 1 MiB" of a tenant shown at 8 MiB did not add up with any report.
    expect(refused.details).toContain(
      'for tenant "small": quota 8388608 bytes (8.00 MiB), used 8388608 bytes (8.00 MiB); the cuDNN scratch it replaces, 7340032 bytes (7.00 MiB) of the used bytes, is given back first.',
    );
    expect(refused.errorMetadata).toMatchObject({ used_bytes: String(8 * MiB), given_back_bytes: String(7 * MiB) });
    expect((await lease.get(grown.scratch!.array_id)).byte_size).toBe(7 * MiB);
    expect(first.scratch!.array_id).not.toBe(grown.scratch!.array_id);
    const usage = (await client.memoryInfo(token)).tenants.find((tenant) => tenant.tenant === 'small')!;
    expect(usage.device_used_bytes).toBe(8 * MiB);
    await lease.close();
    expect((await client.memoryInfo(token)).tenants.find((tenant) => tenant.tenant === 'small')!.device_used_bytes).toBe(0);
  });
});

describe('AcquireCudnnWorkspace with --mirror eager', () => {
  let daemon: DaemonProcess;
  let client: TensormemClient;

  beforeAll(async () => {
    daemon = await startDaemon(['--mirror', 'eager', '--maxbytes', '64M', '--host-maxbytes', '8M', '--pool-chunk', '4M', '--cudnn-library', 'none']);
    client = new TensormemClient(daemon.tcpAddress);
  });

  afterAll(async () => {
    client?.close();
    expect(await daemon?.stop()).toBe(0);
  });

  it('the scratch takes device memory only: no eager mirror, so it grows past --host-maxbytes', async () => {
    const lease = await client.openLease();
    const first = await lease.acquireCudnnWorkspace(request(2 * MiB));
    expect(first.scratch).toMatchObject({ byte_size: 2 * MiB, has_host_mirror: false });
    expect((await client.memoryInfo()).host!.mirror_bytes).toBe(0);
    // 16 MiB fits the 64 MiB pool; the host cap (8 MiB) has nothing to do with it.
    const grown = await lease.acquireCudnnWorkspace(request(16 * MiB));
    expect(grown).toMatchObject({ grew: true, workspace_bytes: 16 * MiB });
    expect(grown.scratch).toMatchObject({ byte_size: 16 * MiB, has_host_mirror: false });
    const info = await client.memoryInfo();
    expect(info.devices[0].used_bytes).toBe(16 * MiB);
    expect(info.host!.used_bytes).toBe(0);
    const small = await lease.acquireCudnnWorkspace(request(2 * MiB));
    expect(small.scratch!.array_id).toBe(grown.scratch!.array_id);
    expect((await lease.close()) > 0).toBe(true);
    expect((await client.memoryInfo()).devices[0].used_bytes).toBe(0);
  });
});

describe('AcquireCudnnWorkspace growth while the old scratch is being read', () => {
  let daemon: DaemonProcess;
  let client: TensormemClient;

  beforeAll(async () => {
    daemon = await startDaemon(['--maxbytes', '64M', '--pool-chunk', '4M', '--data-listen', '127.0.0.1:0', '--cudnn-library', 'none']);
    client = new TensormemClient(daemon.tcpAddress);
  });

  afterAll(async () => {
    client?.close();
    expect(await daemon?.stop()).toBe(0);
  });

  it('a growth that does not fit beside the scratch in flight is refused and leaves it in place; one that fits replaces it', async () => {
    const lease = await client.openLease();
    const first = (await lease.acquireCudnnWorkspace(request(20 * MiB))).scratch!;
    const data = randomBytes(20 * MiB);
    await lease.write(first.array_id, data);
    // A GET whose reader stops reading: the daemon lends the scratch's bytes to the socket until it takes them.
    const endpoint = lease.dataPlane as { host: string; port: number };
    const socket = connect(endpoint.port, endpoint.host);
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write(`GET /v1/arrays/${first.array_id} HTTP/1.1\r\nHost: tensormem\r\nAuthorization: Bearer ${lease.token}\r\n\r\n`);
    await new Promise((resolve) => socket.once('data', resolve));
    socket.pause();
    // 50 MiB fits the 64 MiB cap with the 20 MiB given back, but not beside it.
    const refused = await failure(lease.acquireCudnnWorkspace(request(50 * MiB)));
    expect(refused.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(refused.reason).toBe('DEVICE_OUT_OF_MEMORY');
    expect((await lease.get(first.array_id)).byte_size).toBe(20 * MiB);
    expect((await lease.readGrpc(first.array_id, 0, 4096)).equals(data.subarray(0, 4096))).toBe(true);
    // 40 MiB fits beside it: the old one goes back once the read ends.
    const grown = await lease.acquireCudnnWorkspace(request(40 * MiB));
    expect(grown).toMatchObject({ grew: true, scratch: { byte_size: 40 * MiB } });
    expect((await failure(lease.get(first.array_id))).code).toBe(status.NOT_FOUND);
    socket.destroy();
    await vi.waitFor(async () => expect((await client.memoryInfo()).devices[0].used_bytes).toBe(40 * MiB));
    await lease.close();
    expect((await client.memoryInfo()).devices[0].used_bytes).toBe(0);
  });
});

/**
 * A real cuDNN library (TENSORMEM_TEST_CUDNN_LIBRARY, e.g. the nvidia-cudnn wheel's lib/libcudnn.so.9)
 * opened by the daemon: its version shows in GetConfig; on the host backend it is loaded but unused.
 */
const testLibrary = process.env.TENSORMEM_TEST_CUDNN_LIBRARY;
const libraryReason = !testLibrary ? 'TENSORMEM_TEST_CUDNN_LIBRARY is not set' : !existsSync(testLibrary) ? `${testLibrary} does not exist` : undefined;
describe.skipIf(libraryReason !== undefined)(`with a cuDNN library${libraryReason ? ` — skipped: ${libraryReason}` : ''}`, () => {
  it('loads it at run time, reports its version, and on the host backend sizes from the request, saying so', async () => {
    const daemon = await startDaemon(['--maxbytes', '64M'], { TENSORMEM_CUDNN_LIBRARY: testLibrary });
    const client = new TensormemClient(daemon.tcpAddress);
    try {
      const cudnn = (await client.config()).values.find((value) => value.name === 'cudnn_version')!;
      expect(cudnn.value).toMatch(new RegExp(`^\\d+\\.\\d+\\.\\d+ \\(${testLibrary!.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}\\)$`));
      const lease = await client.openLease();
      const reply = await lease.acquireCudnnWorkspace(request(MiB));
      expect(reply.size_source).toBe('request bytes');
      expect(reply.reason).toMatch(/^cuDNN \d+\.\d+\.\d+ is loaded but the host backend has no CUDA device$/);
    } finally {
      client.close();
      expect(await daemon.stop()).toBe(0);
    }
  });
});
