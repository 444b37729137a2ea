/** ND4J workspaces through gRPC: ND4J's numbers, scopes and generations, policies, and real pool memory. */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LeaseSession, TensormemClient, WorkspaceConfig } from '../../src/client/tensormem-client';
import { DaemonProcess, startDaemon } from '../helpers/daemon-process';
import { failure } from '../helpers/thrown';

const MiB = 1024 * 1024;
const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

/** BasicWorkspaceTests' basicConfig. */
const BASIC: WorkspaceConfig = {
  initial_size: 10 * MiB,
  max_size: 10 * MiB,
  overallocation_limit: 0.1,
  allocation_policy: 'ALLOCATION_POLICY_STRICT',
  learning_policy: 'LEARNING_POLICY_FIRST_LOOP',
  mirroring_policy: 'MIRRORING_POLICY_FULL',
  spill_policy: 'SPILL_POLICY_EXTERNAL',
};

describe('workspaces over gRPC', () => {
  let daemon: DaemonProcess;
  let client: TensormemClient;
  let lease: LeaseSession;
  const mmapDir = mkdtempSync(join(tmpdir(), 'tensormem-mmap-dir-'));

  beforeAll(async () => {
    daemon = await startDaemon(['--maxbytes', '256M', '--host-maxbytes', '128M', '--pool-chunk', '16M', '--mmap-dir', mmapDir]);
    client = new TensormemClient(daemon.tcpAddress);
  });

  afterAll(async () => {
    client?.close();
    expect(await daemon?.stop()).toBe(0);
    rmSync(mmapDir, { recursive: true, force: true });
  });

  const doubles = (n: number) => ({ dataType: 'DATA_TYPE_FLOAT64' as const, shape: [n] });

  it("testAllocation1: attached arrays land at ND4J's aligned offsets, hold real bytes, and go out of scope with ND4J's messages", async () => {
    lease = await client.openLease({ clientName: 'ws-basic' });
    const before = await client.memoryInfo();
    const ws = await lease.createWorkspace('testAllocation1', BASIC);
    expect(ws).toMatchObject({ name: 'testAllocation1', current_size: 10 * MiB, primary_offset: 0, scope_active: false });
    // One device buffer of currentSize + the 1024-byte safety offset, from the pool.
    const held = await client.memoryInfo();
    expect(held.devices[0].used_bytes - before.devices[0].used_bytes).toBe(10 * MiB + 1024);

    expect((await lease.enterWorkspace(ws.workspace_id)).scope_active).toBe(true);
    const array = await lease.allocate(doubles(5));
    expect(array).toMatchObject({ attached: true, workspace_id: ws.workspace_id, generation: 1, byte_size: 40, held_bytes: 0 });
    expect((await lease.getWorkspace(ws.workspace_id)).primary_offset).toBe(48);
    const data = randomBytes(40);
    await lease.write(array.array_id, data);
    const dup = await lease.duplicate(array.array_id);
    expect(dup.attached).toBe(true);
    expect((await lease.getWorkspace(ws.workspace_id)).primary_offset).toBe(96);
    expect(sha256(await lease.read(dup.array_id))).toBe(sha256(data));
    // The read went through a host mirror taken from the workspace's own host side.
    expect((await lease.getWorkspace(ws.workspace_id)).host_offset).toBe(48);
    // Detached copies leave the workspace.
    const detached = await lease.duplicate(array.array_id, { detached: true });
    expect(detached).toMatchObject({ attached: false, workspace_id: '' });
    expect((await lease.leaveWorkspace(ws.workspace_id)).scope_active).toBe(false);

    const leaked = await failure(lease.read(array.array_id));
    expect(leaked.code).toBe(status.FAILED_PRECONDITION);
    expect(leaked.reason).toBe('ARRAY_OUT_OF_SCOPE');
    expect(leaked.details).toContain('Cannot read array: Array uses leaked workspace pointer from workspace testAllocation1');
    expect(sha256(await lease.read(detached.array_id))).toBe(sha256(data));

    await lease.enterWorkspace(ws.workspace_id);
    const outdated = await failure(lease.write(array.array_id, data));
    expect(outdated.details).toContain('Array outdated workspace pointer from workspace testAllocation1 (array generation 1, current workspace generation 2)');
    expect((await failure(lease.duplicate(array.array_id))).reason).toBe('ARRAY_OUT_OF_SCOPE');
    await lease.leaveWorkspace(ws.workspace_id);
  });

  it("refuses under SpillPolicy.FAIL with ND4J's message and moves nothing (testAllocation4)", async () => {
    const ws = await lease.createWorkspace('testAllocation4', { initial_size: MiB, max_size: MiB, overallocation_limit: 0.1, allocation_policy: 'ALLOCATION_POLICY_STRICT', learning_policy: 'LEARNING_POLICY_FIRST_LOOP', spill_policy: 'SPILL_POLICY_FAIL' });
    await lease.enterWorkspace(ws.workspace_id);
    await lease.allocate(doubles(5));
    const before = await lease.getWorkspace(ws.workspace_id);
    const full = await failure(lease.allocate(doubles(10_000_000)));
    expect(full.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(full.reason).toBe('WORKSPACE_FULL');
    // ND4J's words, then the numbers (in bytes and IEC units, with the memory and device) and what to change.
    expect(full.details).toBe(
      `Can't allocate memory: Workspace is full: workspace "testAllocation4" (spill_policy SPILL_POLICY_FAIL, [DEVICE] memory on device 0) has ${MiB - 48} bytes (1023.95 KiB) free ` +
        `of its ${MiB} bytes (1.00 MiB) and was asked for 80000000 bytes (76.29 MiB) (16-byte aligned). ` +
        'Try: a larger initial_size, a learning_policy that sizes it from a cycle (LEARNING_POLICY_FIRST_LOOP), or spill_policy SPILL_POLICY_EXTERNAL to place what does not fit outside it.',
    );
    expect(full.errorMetadata).toEqual({
      workspace_id: ws.workspace_id,
      workspace_name: 'testAllocation4',
      requested_bytes: '80000000',
      current_size: String(MiB),
      free_bytes: String(MiB - 48),
      device: '0',
    });
    expect(await lease.getWorkspace(ws.workspace_id)).toEqual(before);
    await lease.leaveWorkspace(ws.workspace_id);
  });

  it("refuses bad configs with ND4J's messages, and a known name with another config as ALREADY_EXISTS", async () => {
    const mmapLearning = await failure(lease.createWorkspace('bad-mmap', { initial_size: MiB, location_policy: 'LOCATION_POLICY_MMAP', learning_policy: 'LEARNING_POLICY_FIRST_LOOP' }));
    expect(mmapLearning.code).toBe(status.INVALID_ARGUMENT);
    expect(mmapLearning.details).toContain("Workspace backed by memory-mapped file can't have LearningPolicy defined");
    const circular = await failure(lease.createWorkspace('bad-circular', { initial_size: MiB, reset_policy: 'RESET_POLICY_ENDOFBUFFER_REACHED', allocation_policy: 'ALLOCATION_POLICY_OVERALLOCATE', overallocation_limit: 0.5 }));
    expect(circular.details).toContain('For cyclic workspace overallocation should be positive integral value.');
    const before = (await client.memoryInfo()).devices[0].used_bytes;
    const again = await lease.createWorkspace('testAllocation1');
    expect(again.current_size).toBe(10 * MiB);
    const conflict = await failure(lease.createWorkspace('testAllocation1', { ...BASIC, initial_size: MiB }));
    expect(conflict.code).toBe(status.ALREADY_EXISTS);
    expect(conflict.details).toContain('config.initial_size 10485760 (requested 1048576)');
    expect((await client.memoryInfo()).devices[0].used_bytes).toBe(before);
  });

  it('B6: after learning, a cycle of 1,000 allocations takes nothing from the pool', async () => {
    const trainer = await client.openLease({ clientName: 'trainer' });
    const ws = await trainer.createWorkspace('LOOP_WS');
    expect(ws.config).toMatchObject({ learning_policy: 'LEARNING_POLICY_FIRST_LOOP', allocation_policy: 'ALLOCATION_POLICY_OVERALLOCATE', overallocation_limit: 0.3 });
    const cycle = async () => {
      await trainer.enterWorkspace(ws.workspace_id);
      for (let i = 0; i < 1000; i++) await trainer.allocate({ dataType: 'DATA_TYPE_FLOAT32', shape: [16 + (i % 37)] });
      return trainer.leaveWorkspace(ws.workspace_id);
    };
    const learned = await cycle();
    expect(learned.spilled_size).toBe(0); // spills were freed at the close
    expect(learned.current_size).toBeGreaterThan(0);
    const afterLearning = (await client.memoryInfo()).devices[0];
    for (let i = 0; i < 2; i++) {
      const info = await cycle();
      expect(info).toMatchObject({ number_of_external_allocations: 0, spilled_size: 0, current_size: learned.current_size });
    }
    const afterCycles = (await client.memoryInfo()).devices[0];
    expect(afterCycles.allocations_total).toBe(afterLearning.allocations_total);
    expect(afterCycles.used_bytes).toBe(afterLearning.used_bytes);
    expect(await trainer.close()).toBe(learned.held_bytes);
  });

  it('HOST_ONLY workspaces hold host arrays; ScopeOut detaches; destroying gives the memory back', async () => {
    const before = await client.memoryInfo();
    const ws = await lease.createWorkspace('HOST_WS', { initial_size: MiB, mirroring_policy: 'MIRRORING_POLICY_HOST_ONLY', learning_policy: 'LEARNING_POLICY_NONE' });
    const mid = await client.memoryInfo();
    expect(mid.host!.host_only_bytes - before.host!.host_only_bytes).toBeGreaterThanOrEqual(MiB + 1024);
    expect(mid.devices[0].used_bytes).toBe(before.devices[0].used_bytes);
    await lease.enterWorkspace(ws.workspace_id);
    const array = await lease.allocate(doubles(100));
    expect(array).toMatchObject({ placement: 'PLACEMENT_HOST_ONLY', attached: true });
    const left = await lease.scopeOut();
    expect(left?.workspace_id).toBe(ws.workspace_id);
    const outside = await lease.allocate(doubles(100));
    expect(outside.attached).toBe(false);
    await lease.leaveWorkspace(ws.workspace_id); // closes the ScopeOut block
    const inside = await lease.allocate(doubles(100));
    expect(inside.attached).toBe(true);
    await lease.leaveWorkspace(ws.workspace_id);
    await lease.destroyWorkspace(ws.workspace_id);
    expect((await failure(lease.read(array.array_id))).details).toContain('released');
    expect((await failure(lease.getWorkspace(ws.workspace_id))).code).toBe(status.NOT_FOUND);
    await lease.free(outside.array_id);
    const after = await client.memoryInfo();
    expect(after.host!.host_only_bytes).toBe(before.host!.host_only_bytes);
  });

  it('MMAP workspaces are real mapped files: 16 KiB rounding, contents kept across cycles, temp files removed on destroy', async () => {
    // A named file lives in the lease's tenant's folder under --mmap-dir.
    const path = join(mmapDir, 'tenant-default', 'weights.mmap');
    const before = await client.memoryInfo();
    const ws = await lease.createWorkspace('MMAP_WS', { initial_size: 1_000_000, location_policy: 'LOCATION_POLICY_MMAP', learning_policy: 'LEARNING_POLICY_NONE', temp_file_path: 'weights.mmap' });
    expect(statSync(path).size).toBe(1_015_808);
    const mapped = await client.memoryInfo();
    expect(mapped.host!.mmap_bytes - before.host!.mmap_bytes).toBe(1_015_808);
    expect(mapped.devices[0].used_bytes).toBe(before.devices[0].used_bytes);
    await lease.enterWorkspace(ws.workspace_id);
    const first = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [4096] });
    expect(first.placement).toBe('PLACEMENT_HOST_ONLY');
    const data = randomBytes(4096);
    await lease.write(first.array_id, data);
    await lease.leaveWorkspace(ws.workspace_id);
    // The bytes are in the file itself.
    expect(readFileSync(path).subarray(0, 4096).equals(data)).toBe(true);
    await lease.enterWorkspace(ws.workspace_id);
    const second = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [4096] });
    expect(sha256(await lease.read(second.array_id))).toBe(sha256(data));
    await lease.leaveWorkspace(ws.workspace_id);
    await lease.destroyWorkspace(ws.workspace_id);
    expect(existsSync(path)).toBe(true); // a named file is the user's
    expect((await client.memoryInfo()).host!.mmap_bytes).toBe(before.host!.mmap_bytes);

    const temporaries = () => readdirSync(mmapDir).filter((name) => name.startsWith('tensormem-ws-')).length;
    const count = temporaries();
    const temp = await lease.createWorkspace('MMAP_TMP', { initial_size: 64 * 1024, location_policy: 'LOCATION_POLICY_MMAP', learning_policy: 'LEARNING_POLICY_NONE' });
    // A temporary file's name is gone as soon as it is mapped (nothing is left if the daemon is killed); its pages are mapped.
    expect(temporaries()).toBe(count);
    expect((await client.memoryInfo()).host!.mmap_bytes - before.host!.mmap_bytes).toBe(64 * 1024);
    await lease.destroyWorkspace(temp.workspace_id);
    expect(temporaries()).toBe(count);
    expect((await client.memoryInfo()).host!.mmap_bytes).toBe(before.host!.mmap_bytes);
  });

  it('MMAP workspaces are neither overallocated nor capped by max_size (§13): the whole initial_size is usable, to its last byte', async () => {
    const before = await client.memoryInfo();
    // OVERALLOCATE 0.3 is the default and max_size is below initial_size: a RAM workspace would be 100000 + 30000, capped to 50000.
    const ws = await lease.createWorkspace('MMAP_UNCAPPED', { initial_size: 100_000, max_size: 50_000, location_policy: 'LOCATION_POLICY_MMAP', learning_policy: 'LEARNING_POLICY_NONE' });
    expect(ws.current_size).toBe(100_000);
    expect((await client.memoryInfo()).host!.mmap_bytes - before.host!.mmap_bytes).toBe(7 * 16384); // 100000 rounded up to 16 KiB blocks
    await lease.enterWorkspace(ws.workspace_id);
    await lease.allocate(doubles(12_498)); // 99,984 bytes, past max_size, in the file
    await lease.allocate(doubles(2)); // 16 bytes ending exactly at current_size: still in the file (§6.4's <=)
    expect(await lease.getWorkspace(ws.workspace_id)).toMatchObject({ primary_offset: 100_000, spilled_size: 0, number_of_external_allocations: 0 });
    await lease.allocate(doubles(2)); // one past it: spilled to host memory
    expect(await lease.getWorkspace(ws.workspace_id)).toMatchObject({ primary_offset: 100_000, spilled_size: 16, number_of_external_allocations: 1 });
    await lease.leaveWorkspace(ws.workspace_id);
    await lease.destroyWorkspace(ws.workspace_id);
    expect((await client.memoryInfo()).host!.mmap_bytes).toBe(before.host!.mmap_bytes);
  });

  it('an MMAP workspace whose file another live workspace maps is refused when it would re-create the file', async () => {
    // Re-creating the file (createBytes) truncated it under the first workspace's mapping: its bytes
    // were lost, and when the re-creation failed the file was left empty and the daemon died of SIGBUS
    // on the first workspace's next read.
    const path = join(mmapDir, 'tenant-default', 'shared.mmap');
    const mmap = (initial_size: number) => ({ initial_size, location_policy: 'LOCATION_POLICY_MMAP' as const, learning_policy: 'LEARNING_POLICY_NONE' as const, temp_file_path: 'shared.mmap' });
    const first = await lease.createWorkspace('MMAP_FIRST', mmap(64 * 1024));
    await lease.enterWorkspace(first.workspace_id);
    const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [4096] });
    const data = randomBytes(4096);
    await lease.write(array.array_id, data);
    for (const size of [MiB, 2 ** 50]) {
      const refused = await failure(lease.createWorkspace('MMAP_SECOND', mmap(size)));
      expect(refused.code, refused.message).toBe(status.FAILED_PRECONDITION);
      expect(refused.message).toMatch(/is mapped by a live chunk of this process/);
    }
    expect(statSync(path).size).toBe(64 * 1024);
    expect(sha256(await lease.read(array.array_id))).toBe(sha256(data));
    // A file long enough is mapped as it is, shared.
    const sharing = await lease.createWorkspace('MMAP_SHARING', mmap(16 * 1024));
    await lease.leaveWorkspace(first.workspace_id);
    await lease.destroyWorkspace(sharing.workspace_id);
    await lease.destroyWorkspace(first.workspace_id);
    const again = await lease.createWorkspace('MMAP_AGAIN', mmap(MiB));
    expect(statSync(path).size).toBe(MiB);
    await lease.destroyWorkspace(again.workspace_id);
  });

  it('an MMAP workspace larger than the file system of --mmap-dir is RESOURCE_EXHAUSTED / MMAP_LIMIT with both numbers, and leaves no file', async () => {
    // It was FAILED_PRECONDITION "ftruncate ... File too large" for 1 PiB (past the longest file the
    // file system takes), and "the disk is full" with no figure for sizes under that.
    const mmap = (temp_file_path?: string) => ({ initial_size: 2 ** 50, location_policy: 'LOCATION_POLICY_MMAP' as const, learning_policy: 'LEARNING_POLICY_NONE' as const, temp_file_path });
    const before = await client.memoryInfo();
    const files = readdirSync(mmapDir, { recursive: true }).sort();
    for (const path of ['petabyte.mmap', undefined]) {
      const refused = await failure(lease.createWorkspace('MMAP_PIB', mmap(path)));
      expect([refused.code, refused.reason], refused.message).toEqual([status.RESOURCE_EXHAUSTED, 'MMAP_LIMIT']);
      expect(refused.details).toContain('initial_size 1125899906842624 bytes (1.00 PiB) is more than the file system of --mmap-dir has room for');
      expect(refused.errorMetadata.requested_bytes).toBe(String(2 ** 50));
      expect(Number(refused.errorMetadata.free_bytes)).toBeGreaterThan(0);
      expect(Number(refused.errorMetadata.free_bytes)).toBeLessThan(2 ** 50);
    }
    expect(readdirSync(mmapDir, { recursive: true }).sort()).toEqual(files);
    expect((await client.memoryInfo()).host!.mmap_bytes).toBe(before.host!.mmap_bytes);
    expect(await lease.listWorkspaces()).not.toContainEqual(expect.objectContaining({ name: 'MMAP_PIB' }));
  });

  it("MMAP files stay in the lease's tenant's folder: no absolute or '..' path, no other tenant's file, no symbolic link", async () => {
    const mmap = (name: string) => ({ initial_size: 16 * 1024, location_policy: 'LOCATION_POLICY_MMAP' as const, learning_policy: 'LEARNING_POLICY_NONE' as const, temp_file_path: name });
    const a = await client.openLease({ tenant: 'mmap-a' });
    const b = await client.openLease({ tenant: 'mmap-b' });
    const outside = join(mmapDir, 'secret.txt');
    writeFileSync(outside, 'PRIVATE KEY 0123');
    try {
      for (const name of [outside, '/etc/hostname', '../secret.txt', 'x/../../secret.txt', './x', 'x//y']) {
        const refused = await failure(a.createWorkspace(`bad-${name}`, mmap(name)));
        expect([refused.code, refused.errorMetadata.field]).toEqual([status.INVALID_ARGUMENT, 'config.temp_file_path']);
        expect(refused.details).toContain(JSON.stringify(name));
      }
      expect(readFileSync(outside, 'utf8')).toBe('PRIVATE KEY 0123');

      // The same name is a different file for each tenant.
      const wsA = await a.createWorkspace('shared', mmap('data/shared.mmap'));
      await a.enterWorkspace(wsA.workspace_id);
      const arrayA = await a.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [16] });
      await a.write(arrayA.array_id, Buffer.from('lease A weights!'));
      await a.leaveWorkspace(wsA.workspace_id);
      const wsB = await b.createWorkspace('shared', mmap('data/shared.mmap'));
      await b.enterWorkspace(wsB.workspace_id);
      const arrayB = await b.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [16] });
      expect((await b.read(arrayB.array_id)).equals(Buffer.alloc(16))).toBe(true);
      await b.leaveWorkspace(wsB.workspace_id);
      expect(readFileSync(join(mmapDir, 'tenant-mmap-a', 'data', 'shared.mmap')).subarray(0, 16).toString()).toBe('lease A weights!');
      expect(statSync(join(mmapDir, 'tenant-mmap-b', 'data', 'shared.mmap')).size).toBe(16 * 1024);
      expect(statSync(join(mmapDir, 'tenant-mmap-a')).mode & 0o777).toBe(0o700);

      // A link planted in the tenant's folder is not followed.
      symlinkSync(outside, join(mmapDir, 'tenant-mmap-a', 'link.mmap'));
      const linked = await failure(a.createWorkspace('linked', mmap('link.mmap')));
      expect(linked.code).toBe(status.FAILED_PRECONDITION);
      expect(linked.details).toContain('symbolic link');
      expect(readFileSync(outside, 'utf8')).toBe('PRIVATE KEY 0123');
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('duplicates into a circular workspace whose ring wraps onto the source itself, or onto part of it', async () => {
    // ND4J's ring buffer hands out memory its earlier arrays still use: the copy can land on its own source.
    const ring = await lease.createWorkspace('RING_DUP', { initial_size: 512 * 1024, reset_policy: 'RESET_POLICY_ENDOFBUFFER_REACHED', learning_policy: 'LEARNING_POLICY_NONE', allocation_policy: 'ALLOCATION_POLICY_STRICT' });
    await lease.enterWorkspace(ring.workspace_id);
    try {
      const bytes = (n: number) => ({ dataType: 'DATA_TYPE_UINT8' as const, shape: [n] });
      // The same range: the source at the ring's start, its 300 KiB copy wraps to the start again.
      const whole = await lease.allocate(bytes(300 * 1024));
      const pattern = randomBytes(300 * 1024);
      await lease.write(whole.array_id, pattern);
      const onItself = await lease.duplicate(whole.array_id);
      expect(sha256(await lease.read(onItself.array_id))).toBe(sha256(pattern));
      // Part of it: 100 KiB first, the source after it, its copy wraps to the start and covers the source's first 200 KiB.
      await lease.leaveWorkspace(ring.workspace_id);
      await lease.enterWorkspace(ring.workspace_id);
      await lease.allocate(bytes(100 * 1024));
      const shifted = await lease.allocate(bytes(300 * 1024));
      const second = randomBytes(300 * 1024);
      await lease.write(shifted.array_id, second);
      const overlapping = await lease.duplicate(shifted.array_id);
      expect(sha256(await lease.read(overlapping.array_id))).toBe(sha256(second));
    } finally {
      await lease.leaveWorkspace(ring.workspace_id);
      await lease.destroyWorkspace(ring.workspace_id);
    }
  });

  it("refuses a circular workspace's array once the ring came round over it: no read of a later array's bytes, no write into them", async () => {
    // A learned ring of two 168-byte blocks (128 bytes a cycle, ×1.3 + pad, overallocation 1).
    const ring = await lease.createWorkspace('RING_STALE', { reset_policy: 'RESET_POLICY_ENDOFBUFFER_REACHED', overallocation_limit: 1 });
    const ids: string[] = [];
    for (let i = 0; i < 12; i++) {
      await lease.enterWorkspace(ring.workspace_id);
      const array = await lease.allocate(doubles(16));
      await lease.write(array.array_id, Buffer.alloc(128, i));
      // Reading takes each array's host mirror from the ring's host side too.
      expect((await lease.read(array.array_id))[0]).toBe(i);
      ids.push(array.array_id);
      await lease.leaveWorkspace(ring.workspace_id);
    }
    await lease.enterWorkspace(ring.workspace_id);
    try {
      const live = await lease.allocate(doubles(16));
      await lease.write(live.array_id, Buffer.alloc(128, 0x77));
      // The ring holds the last cycle's array and this one; every older array's bytes went to later arrays.
      expect((await lease.read(ids[11]))[0]).toBe(11);
      // The first cycle's array was a spill (learning), freed since.
      expect((await failure(lease.read(ids[0]))).message).toMatch(/Array memory was released/);
      for (const id of ids.slice(1, 10)) {
        const read = await failure(lease.read(id));
        expect(read.code).toBe(status.FAILED_PRECONDITION);
        expect(read.reason).toBe('ARRAY_OUT_OF_SCOPE');
        expect(read.message).toMatch(/Cannot read array: Array memory was overwritten: circular workspace RING_STALE came round its ring/);
        const write = await failure(lease.write(id, Buffer.alloc(128, 0x11)));
        expect(write.reason).toBe('ARRAY_OUT_OF_SCOPE');
        expect((await failure(lease.duplicate(id, { detached: true }))).reason).toBe('ARRAY_OUT_OF_SCOPE');
      }
      expect((await lease.read(live.array_id)).equals(Buffer.alloc(128, 0x77))).toBe(true);
      // Bounded retention: overwritten arrays leave the lease's array map as outdated ones do.
      expect((await lease.list()).filter((array) => array.workspace_id === ring.workspace_id).length).toBeLessThanOrEqual(3);
    } finally {
      await lease.leaveWorkspace(ring.workspace_id);
      await lease.destroyWorkspace(ring.workspace_id);
    }
  });

  it('allocates anew for a request_id retried after its workspace moved on, instead of the outdated array', async () => {
    const own = await client.openLease();
    const workspace = await own.createWorkspace('retried', { initial_size: 4096 });
    const request = { ...doubles(4), workspaceId: workspace.workspace_id, requestId: 'step-1' };
    await own.enterWorkspace(workspace.workspace_id);
    const first = await own.allocate(request);
    expect((await own.allocate(request)).array_id).toBe(first.array_id);
    await own.leaveWorkspace(workspace.workspace_id);
    await own.enterWorkspace(workspace.workspace_id);
    const retried = await own.allocate(request);
    expect(retried.array_id).not.toBe(first.array_id);
    expect(retried.generation).toBe(first.generation + 1);
    expect((await own.read(retried.array_id)).length).toBe(32);
    await own.close();
  });

  it('refuses a config.device that does not exist when the workspace is created, whatever its learning policy', async () => {
    const own = await client.openLease();
    for (const config of [{ initial_size: 4096, device: 7 }, { device: 7 }]) {
      const error = await failure(own.createWorkspace(`device-7-${config.initial_size ?? 0}`, config));
      expect(error.code).toBe(status.INVALID_ARGUMENT);
      expect(error.details).toBe('Expected a device index from 0 to 0 for config.device but received 7');
    }
    expect(await own.listWorkspaces()).toEqual([]);
    await own.close();
  });

  it("counts a FULL workspace's host side (mirror spills included) as mirror bytes, not HOST_ONLY bytes", async () => {
    const own = await client.openLease();
    const before = (await client.memoryInfo()).host!;
    // FIRST_LOOP: the first cycle spills, on the device and, once read, on the host side.
    const workspace = await own.createWorkspace('full-mirror', {});
    await own.enterWorkspace(workspace.workspace_id);
    const array = await own.allocate({ dataType: 'DATA_TYPE_FLOAT32', shape: [1 << 18], workspaceId: workspace.workspace_id });
    await own.read(array.array_id);
    const after = (await client.memoryInfo()).host!;
    expect(after.mirror_bytes - before.mirror_bytes).toBeGreaterThanOrEqual(MiB);
    expect(after.host_only_bytes).toBe(before.host_only_bytes);
    await own.close();
  });

  it('says in WorkspaceInfo why a workspace cannot grow to its learned size, and warns once, not at every LeaveWorkspace while it keeps failing', async () => {
    const own = await client.openLease();
    // The cycle spills 100 MiB; learning then wants 200 MiB (OVERALLOCATE 1.0) beside a 100 MiB array: past --maxbytes 256M.
    const workspace = await own.createWorkspace('cannot-grow', {
      allocation_policy: 'ALLOCATION_POLICY_OVERALLOCATE',
      overallocation_limit: 1,
      learning_policy: 'LEARNING_POLICY_FIRST_LOOP',
      spill_policy: 'SPILL_POLICY_EXTERNAL',
    });
    const id = workspace.workspace_id;
    const outside = await own.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [100 * MiB] });
    await own.enterWorkspace(id);
    await own.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [100 * MiB], workspaceId: id });
    const logged = daemon.logs.length;
    // The trainer is told too, in the workspace's info.
    const left = await own.leaveWorkspace(id);
    expect(left.learning_failure).toContain("Can't allocate [DEVICE] memory");
    expect(left.learning_failure_reason).toBe('DEVICE_OUT_OF_MEMORY');
    for (let cycle = 0; cycle < 20; cycle++) {
      await own.enterWorkspace(id);
      await own.leaveWorkspace(id);
    }
    expect((await own.getWorkspace(id)).learning_failure_reason).toBe('DEVICE_OUT_OF_MEMORY');
    const failures = () => daemon.logs.slice(logged).filter((entry) => entry.event === 'workspace_learning_failed');
    // The daemon's stderr arrives on its own pipe: the last lines may still be on their way.
    await expect.poll(() => failures().length, { timeout: 5_000 }).toBe(21);
    expect(failures().filter((entry) => (entry.level as number) >= 40)).toHaveLength(1);
    expect(failures()[0]).toMatchObject({ workspaceId: id, repeated: false });
    expect(failures()[0].error).toContain("Can't allocate [DEVICE] memory");
    expect(failures().filter((entry) => entry.repeated)).toHaveLength(20);
    expect((await own.getWorkspace(id)).current_size).toBe(0);
    // Room again: it learns, and a later failure would be news again.
    await own.free(outside.array_id);
    await own.enterWorkspace(id);
    expect(await own.leaveWorkspace(id)).toMatchObject({ learning_failure: '', learning_failure_reason: '' });
    expect((await own.getWorkspace(id)).current_size).toBeGreaterThan(0);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(failures()).toHaveLength(21);
    await own.close();
  });

  it('retries an OVER_TIME learning refused at cycles_before_initialization at the next LeaveWorkspace, once there is room', async () => {
    const own = await client.openLease();
    const workspace = await own.createWorkspace('over-time-cannot-grow', {
      overallocation_limit: 1,
      learning_policy: 'LEARNING_POLICY_OVER_TIME',
      cycles_before_initialization: 2,
    });
    const id = workspace.workspace_id;
    // Learning at the second close wants 200 MiB + 1 KiB beside this 100 MiB array: past --maxbytes 256M.
    const outside = await own.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [100 * MiB] });
    for (let cycle = 1; cycle <= 2; cycle++) {
      await own.enterWorkspace(id);
      await own.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [100 * MiB], workspaceId: id });
      await own.leaveWorkspace(id);
    }
    expect(await own.getWorkspace(id)).toMatchObject({ current_size: 0, cycles_count: 2, learning_failure_reason: 'DEVICE_OUT_OF_MEMORY' });
    await own.free(outside.array_id);
    await own.enterWorkspace(id);
    // Before, the learning moment had passed for good: 0 bytes at every later close, every cycle spilled.
    expect(await own.leaveWorkspace(id)).toMatchObject({ current_size: 200 * MiB, initial_block_size: 100 * MiB, cycles_count: 3, learning_failure: '' });
    await own.close();
  });

  it("keeps workspaces per lease: another lease cannot see or enter them", async () => {
    const other = await client.openLease();
    const mine = (await lease.listWorkspaces()).map((w) => w.workspace_id);
    expect(mine.length).toBeGreaterThan(0);
    expect(await other.listWorkspaces()).toEqual([]);
    expect((await failure(other.enterWorkspace(mine[0]))).code).toBe(status.NOT_FOUND);
    expect((await failure(other.allocate({ ...doubles(4), workspaceId: mine[0] }))).code).toBe(status.NOT_FOUND);
    await other.close();
  });

  it('frees every workspace with the lease', async () => {
    const before = await client.memoryInfo();
    const held = (await lease.listWorkspaces()).reduce((sum, w) => sum + w.held_bytes, 0);
    expect(held).toBeGreaterThan(10 * MiB);
    await lease.close();
    const after = await client.memoryInfo();
    expect(before.devices[0].used_bytes + before.host!.used_bytes - (after.devices[0].used_bytes + after.host!.used_bytes)).toBeGreaterThanOrEqual(held);
    expect(after.devices[0].used_bytes).toBe(0);
    expect(after.host!.used_bytes).toBe(0);
  });

  it("a lease's mmap_bytes counts a file once, however many of its workspaces map it (as the tenant's mmap_used_bytes does)", async () => {
    // Two workspaces of one lease on one temp_file_path: ListLeases showed the file twice.
    const mmap = (initial_size: number, temp_file_path?: string) => ({ initial_size, location_policy: 'LOCATION_POLICY_MMAP' as const, learning_policy: 'LEARNING_POLICY_NONE' as const, temp_file_path });
    const owner = await client.openLease({ tenant: 'mmap-once' });
    const other = await client.openLease({ tenant: 'mmap-once' });
    try {
      await owner.createWorkspace('FIRST', mmap(40_000, 'once.mmap'));
      await owner.createWorkspace('SECOND', mmap(0, 'once.mmap'));
      await owner.createWorkspace('TEMP', mmap(16 * 1024));
      await other.createWorkspace('THIRD', mmap(0, 'once.mmap'));
      const leaseBytes = async () => Object.fromEntries((await client.listLeases(undefined, { tenant: 'mmap-once' })).map((lease) => [lease.lease_id, Number(lease.mmap_bytes)]));
      const tenantBytes = async () => Number((await client.memoryInfo()).tenants.find((row) => row.tenant === 'mmap-once')!.mmap_used_bytes);
      expect(await leaseBytes()).toEqual({ [owner.leaseId]: 49_152 + 16_384, [other.leaseId]: 49_152 });
      expect(await tenantBytes()).toBe(49_152 + 16_384);
    } finally {
      await owner.close();
      await other.close();
    }
  });

  it("CloseLease's and EvictLease's freed_bytes count pool memory only, not MMAP files (one another lease still maps included)", async () => {
    // freed_bytes is what went back to the pools (device and host). The MMAP workspaces' files are in
    // neither: a file another lease maps stays mapped, and was counted as freed by both leases' closes.
    const mmap = (initial_size: number, temp_file_path?: string) => ({ initial_size, location_policy: 'LOCATION_POLICY_MMAP' as const, learning_policy: 'LEARNING_POLICY_NONE' as const, temp_file_path });
    const first = await client.openLease({ tenant: 'mmap-freed' });
    const second = await client.openLease({ tenant: 'mmap-freed' });
    const evicted = await client.openLease({ tenant: 'mmap-freed' });
    const before = await client.memoryInfo();
    const buffer = await first.createWorkspace('RAM', { initial_size: MiB, learning_policy: 'LEARNING_POLICY_NONE' });
    await first.createWorkspace('SHARED', mmap(MiB, 'freed.mmap'));
    await first.createWorkspace('TEMP', mmap(64 * 1024));
    await second.createWorkspace('SHARED', mmap(0, 'freed.mmap'));
    await evicted.createWorkspace('TEMP', mmap(64 * 1024));
    const array = await first.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [4096], placement: 'PLACEMENT_HOST_ONLY' });
    expect((await client.memoryInfo()).host!.mmap_bytes - before.host!.mmap_bytes).toBe(MiB + 2 * 64 * 1024);

    expect(await first.close()).toBe(buffer.held_bytes + array.held_bytes);
    // The shared file is still mapped by the second lease: nothing of it was freed.
    expect((await client.memoryInfo()).host!.mmap_bytes - before.host!.mmap_bytes).toBe(MiB + 64 * 1024);
    expect(await second.close()).toBe(0);
    expect(await client.evictLease(evicted.leaseId)).toBe(0);
    const after = await client.memoryInfo();
    expect(after.host!.mmap_bytes).toBe(before.host!.mmap_bytes);
    expect(after.devices[0].used_bytes).toBe(before.devices[0].used_bytes);
    expect(after.host!.used_bytes).toBe(before.host!.used_bytes);
  });
});

describe('temporary MMAP files of a daemon that is killed', () => {
  it('leave nothing in --mmap-dir: the name is unlinked once mapped, the pages go with the process', async () => {
    const mmapDir = mkdtempSync(join(tmpdir(), 'tensormem-mmap-killed-'));
    const daemon = await startDaemon(['--mmap-dir', mmapDir]);
    const client = new TensormemClient(daemon.tcpAddress);
    try {
      const lease = await client.openLease();
      const ws = await lease.createWorkspace('scratch', { initial_size: 4 * MiB, location_policy: 'LOCATION_POLICY_MMAP', learning_policy: 'LEARNING_POLICY_NONE' });
      await lease.enterWorkspace(ws.workspace_id);
      const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [MiB] });
      const data = randomBytes(MiB);
      await lease.write(array.array_id, data);
      // The workspace works from the unlinked file: the bytes come back.
      expect(sha256(await lease.read(array.array_id))).toBe(sha256(data));
      expect((await client.memoryInfo()).host!.mmap_bytes).toBe(4 * MiB);
      client.close();
      expect(await daemon.stop('SIGKILL')).toBeNull();
      expect(readdirSync(mmapDir)).toEqual([]);
    } finally {
      client.close();
      await daemon.stop('SIGKILL');
      rmSync(mmapDir, { recursive: true, force: true });
    }
  });
});
