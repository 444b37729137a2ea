/** ND4J 1.0.0-M1 workspace policy numbers (reference/nd4j-semantics.md §4–§10) replayed over gRPC against a real daemon. */
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LeaseSession, TensormemClient } from '../../src/client/tensormem-client';
import { DaemonProcess, startDaemon } from '../helpers/daemon-process';
import { failure } from '../helpers/thrown';

const f64 = (n: number) => ({ dataType: 'DATA_TYPE_FLOAT64' as const, shape: [n] });
describe('ND4J workspace policies over gRPC', () => {
  let daemon: DaemonProcess;
  let client: TensormemClient;
  let lease: LeaseSession;
  beforeAll(async () => {
    daemon = await startDaemon(['--maxbytes', '64M', '--host-maxbytes', '64M', '--pool-chunk', '4M']);
    client = new TensormemClient(daemon.tcpAddress);
    lease = await client.openLease({ clientName: 'nd4j-review' });
  });
  afterAll(async () => {
    client?.close();
    expect(await daemon?.stop()).toBe(0);
  });

  it('B1 FIRST_LOOP OVERALLOCATE 0.3 with max 1200: learns at first close, overallocates then caps', async () => {
    const ws = await lease.createWorkspace('b1', { max_size: 1200 });
    expect(ws.config!.overallocation_limit).toBe(0.3);
    await lease.enterWorkspace(ws.workspace_id);
    const a = await lease.allocate(f64(125)); // 1000 -> 1008
    expect(a.attached).toBe(true);
    let info = await lease.getWorkspace(ws.workspace_id);
    expect(info).toMatchObject({ current_size: 0, spilled_size: 1008, number_of_external_allocations: 1, this_cycle_allocations: 1008 });
    info = await lease.leaveWorkspace(ws.workspace_id);
    expect(info).toMatchObject({ current_size: 1200, max_cycle_allocations: 1008, initial_block_size: 1008, spilled_size: 0, number_of_external_allocations: 0, cycles_count: 1, last_cycle_allocations: 1008, this_cycle_allocations: 0 });
    // min_size after the learned size; cap still wins
    const ws2 = await lease.createWorkspace('b1b', { min_size: 5000, allocation_policy: 'ALLOCATION_POLICY_STRICT' });
    await lease.enterWorkspace(ws2.workspace_id);
    await lease.allocate(f64(125));
    expect((await lease.leaveWorkspace(ws2.workspace_id)).current_size).toBe(5000);
  });

  it('B2 OVER_TIME: learns at the close where cyclesCount == cyclesBeforeInitialization; 0 never', async () => {
    const ws = await lease.createWorkspace('b2', { learning_policy: 'LEARNING_POLICY_OVER_TIME', cycles_before_initialization: 3, allocation_policy: 'ALLOCATION_POLICY_STRICT' });
    const sizes: number[] = [];
    for (let i = 1; i <= 4; i++) {
      await lease.enterWorkspace(ws.workspace_id);
      await lease.allocate(f64(i * 10)); // 80,160,240,320 (aligned 80,160,240,320)
      sizes.push((await lease.leaveWorkspace(ws.workspace_id)).current_size);
    }
    expect(sizes).toEqual([0, 0, 240, 240]);
    const ws0 = await lease.createWorkspace('b2z', { learning_policy: 'LEARNING_POLICY_OVER_TIME' });
    for (let i = 0; i < 3; i++) {
      await lease.enterWorkspace(ws0.workspace_id);
      await lease.allocate(f64(10));
      expect((await lease.leaveWorkspace(ws0.workspace_id)).current_size).toBe(0);
    }
    const init = await lease.initializeWorkspace(ws0.workspace_id);
    expect(init.current_size).toBe(80 + 24); // 80 + trunc(80*0.3)=24
  });

  it('B3 REALLOCATE: grows exactly to maxCycle after first overallocation (isOver sticky)', async () => {
    const ws = await lease.createWorkspace('b3', { spill_policy: 'SPILL_POLICY_REALLOCATE' });
    await lease.enterWorkspace(ws.workspace_id);
    await lease.allocate(f64(200)); // 1600
    expect((await lease.leaveWorkspace(ws.workspace_id)).current_size).toBe(2080);
    await lease.enterWorkspace(ws.workspace_id);
    await lease.allocate(f64(200)); // fits
    const spill = await lease.allocate(f64(100)); // 800: 1600+800 > 2080 -> spill
    expect(spill.attached).toBe(true);
    let info = await lease.getWorkspace(ws.workspace_id);
    expect(info).toMatchObject({ spilled_size: 800, number_of_external_allocations: 1 });
    info = await lease.leaveWorkspace(ws.workspace_id);
    expect(info).toMatchObject({ current_size: 2400, spilled_size: 0, number_of_external_allocations: 0, max_cycle_allocations: 2400 });
    // initial size path: 1000 OVERALLOCATE -> 1300; spill 1600 -> exactly 1600
    const w2 = await lease.createWorkspace('b3b', { initial_size: 1000, spill_policy: 'SPILL_POLICY_REALLOCATE' });
    expect(w2.current_size).toBe(1300);
    await lease.enterWorkspace(w2.workspace_id);
    await lease.allocate(f64(200));
    expect((await lease.leaveWorkspace(w2.workspace_id)).current_size).toBe(1600);
    // maxSize: no growth when maxCycle >= maxSize
    const w3 = await lease.createWorkspace('b3c', { initial_size: 1000, max_size: 1200, spill_policy: 'SPILL_POLICY_REALLOCATE' });
    expect(w3.current_size).toBe(1200);
    await lease.enterWorkspace(w3.workspace_id);
    await lease.allocate(f64(200));
    expect((await lease.leaveWorkspace(w3.workspace_id)).current_size).toBe(1200);
  });

  it('B4 FAIL: RESOURCE_EXHAUSTED with ND4J text; nothing moved', async () => {
    const ws = await lease.createWorkspace('b4', { initial_size: 1024, allocation_policy: 'ALLOCATION_POLICY_STRICT', spill_policy: 'SPILL_POLICY_FAIL' });
    await lease.enterWorkspace(ws.workspace_id);
    await lease.allocate(f64(100));
    const e = await failure(lease.allocate(f64(100)));
    expect(e.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(e.details).toContain("Can't allocate memory: Workspace is full");
    const info = await lease.getWorkspace(ws.workspace_id);
    expect(info).toMatchObject({ primary_offset: 800, spilled_size: 0, this_cycle_allocations: 800 });
    await lease.leaveWorkspace(ws.workspace_id);
  });

  it('B5 learning NONE BLOCK_LEFT: spills survive the close, freed at next enter', async () => {
    const ws = await lease.createWorkspace('b5', { initial_size: 512, learning_policy: 'LEARNING_POLICY_NONE', allocation_policy: 'ALLOCATION_POLICY_STRICT' });
    await lease.enterWorkspace(ws.workspace_id);
    await lease.allocate(f64(100));
    let info = await lease.leaveWorkspace(ws.workspace_id);
    expect(info).toMatchObject({ current_size: 512, number_of_external_allocations: 1, spilled_size: 800 });
    info = await lease.enterWorkspace(ws.workspace_id);
    expect(info).toMatchObject({ number_of_external_allocations: 0, spilled_size: 0 });
    await lease.leaveWorkspace(ws.workspace_id);
  });

  it('B6 circular: learned block 1.3 + pad, overallocate, cycles occupy one block, wrap frees spills', async () => {
    const ws = await lease.createWorkspace('b6', { reset_policy: 'RESET_POLICY_ENDOFBUFFER_REACHED', overallocation_limit: 1.0 });
    await lease.enterWorkspace(ws.workspace_id);
    await lease.allocate(f64(100)); // 800 spill
    let info = await lease.leaveWorkspace(ws.workspace_id);
    expect(info).toMatchObject({ initial_block_size: 1048, max_cycle_allocations: 1048, current_size: 2096, number_of_external_allocations: 1 });
    const offsets: number[] = [];
    const extern: number[] = [];
    const steps: number[] = [];
    for (let i = 0; i < 4; i++) {
      await lease.enterWorkspace(ws.workspace_id);
      await lease.allocate(f64(50)); // 400
      info = await lease.leaveWorkspace(ws.workspace_id);
      offsets.push(info.primary_offset);
      extern.push(info.number_of_external_allocations);
      steps.push(info.step_number);
    }
    expect(offsets).toEqual([1048, 2096, 1048, 2096]);
    expect(extern).toEqual([1, 1, 0, 0]);
    expect(steps).toEqual([0, 1, 1, 2]);
    const bad = await failure(lease.createWorkspace('b6bad', { reset_policy: 'RESET_POLICY_ENDOFBUFFER_REACHED' }));
    expect(bad.code).toBe(status.INVALID_ARGUMENT);
    expect(bad.details).toContain('For cyclic workspace overallocation should be positive integral value.');
    // The caller set neither field: the message says the 0.3 is the default, and what to set instead.
    expect(bad.details).toContain('(config.overallocation_limit = 0.3). That is the default of an unset overallocation_limit. Fix: allocation_policy ALLOCATION_POLICY_STRICT');
    expect(bad.details).toContain('or overallocation_limit 1 or more with the default allocation_policy ALLOCATION_POLICY_OVERALLOCATE');
    const strict = await lease.createWorkspace('b6strict', { initial_size: 4096, reset_policy: 'RESET_POLICY_ENDOFBUFFER_REACHED', allocation_policy: 'ALLOCATION_POLICY_STRICT' });
    expect(strict.current_size).toBe(4096);
  });

  it('B7 nesting: leave order, re-entry, borrow, scope out', async () => {
    const a = await lease.createWorkspace('b7a', { initial_size: 4096 });
    const b = await lease.createWorkspace('b7b', { initial_size: 4096 });
    await lease.enterWorkspace(a.workspace_id);
    await lease.allocate(f64(2));
    await lease.enterWorkspace(b.workspace_id);
    const inB = await lease.allocate(f64(2));
    expect(inB.workspace_id).toBe(b.workspace_id);
    const wrong = await failure(lease.leaveWorkspace(a.workspace_id));
    expect(wrong.code).toBe(status.FAILED_PRECONDITION);
    const reenter = await failure(lease.enterWorkspace(a.workspace_id));
    expect(reenter.code).toBe(status.FAILED_PRECONDITION);
    expect((await lease.getWorkspace(a.workspace_id)).primary_offset).toBe(16);
    // re-entrant open of the current one
    const g = (await lease.getWorkspace(b.workspace_id)).generation_id;
    await lease.enterWorkspace(b.workspace_id);
    expect((await lease.getWorkspace(b.workspace_id)).generation_id).toBe(g);
    await lease.leaveWorkspace(b.workspace_id);
    expect((await lease.getWorkspace(b.workspace_id)).scope_active).toBe(true);
    const left = await lease.scopeOut();
    expect(left!.workspace_id).toBe(b.workspace_id);
    const out = await lease.allocate(f64(2));
    expect(out.attached).toBe(false);
    await lease.leaveWorkspace(b.workspace_id); // ends scope-out
    expect((await lease.getWorkspace(b.workspace_id)).current).toBe(true);
    // A borrow of the outer, open workspace attaches there without a new cycle (testNestedWorkspacesOverlap2).
    await lease.borrowWorkspace(a.workspace_id);
    const borrowed = await lease.allocate(f64(2));
    expect(borrowed).toMatchObject({ workspace_id: a.workspace_id, generation: 1 });
    expect((await lease.getWorkspace(a.workspace_id)).primary_offset).toBe(32);
    const again = await failure(lease.borrowWorkspace(a.workspace_id));
    expect(again.details).toContain("Can't borrow from borrowed workspace");
    await lease.leaveWorkspace(a.workspace_id); // ends the borrow
    expect((await lease.getWorkspace(b.workspace_id)).current).toBe(true);
    await lease.leaveWorkspace(b.workspace_id);
    expect((await lease.getWorkspace(a.workspace_id)).current).toBe(true);
    await lease.leaveWorkspace(a.workspace_id);
    expect((await lease.getWorkspace(a.workspace_id)).current).toBe(false);
  });

  it('B8 circular pinned (EXTERNAL) ages out after 2 steps; trimmed mode (REALLOCATE) rebuilds', async () => {
    for (const spill of ['SPILL_POLICY_EXTERNAL', 'SPILL_POLICY_REALLOCATE'] as const) {
      const ws = await lease.createWorkspace(`b8-${spill}`, { reset_policy: 'RESET_POLICY_ENDOFBUFFER_REACHED', overallocation_limit: 1.0, spill_policy: spill });
      await lease.enterWorkspace(ws.workspace_id);
      await lease.allocate(f64(100));
      await lease.leaveWorkspace(ws.workspace_id);
      await lease.enterWorkspace(ws.workspace_id);
      await lease.allocate(f64(100));
      await lease.allocate(f64(50)); // past the 1048-byte block: pinned
      let info = await lease.leaveWorkspace(ws.workspace_id);
      expect(info).toMatchObject({ number_of_pinned_allocations: 1, pinned_size: 400, max_cycle_allocations: 1200, primary_offset: 800 });
      const rows: unknown[] = [];
      for (let c = 3; c <= 7; c++) {
        await lease.enterWorkspace(ws.workspace_id);
        await lease.allocate(f64(100));
        info = await lease.leaveWorkspace(ws.workspace_id);
        rows.push([c, info.step_number, info.number_of_pinned_allocations, info.primary_offset, info.current_size, info.initial_block_size]);
      }
      if (spill === 'SPILL_POLICY_EXTERNAL') {
        expect(rows).toEqual([[3, 1, 1, 1848, 2096, 1048], [4, 1, 1, 1048, 2096, 1048], [5, 2, 1, 2096, 2096, 1048], [6, 2, 1, 1048, 2096, 1048], [7, 3, 0, 2096, 2096, 1048]]);
      } else {
        expect(rows.at(-1)).toEqual([7, 3, 4, 0, 3136, 1568]);
      }
    }
  });

  it('B9 explicit overallocation_limit 0 is honoured (not the 0.3 default)', async () => {
    const ws = await lease.createWorkspace('b9', { initial_size: 1000, overallocation_limit: 0 });
    expect(ws.current_size).toBe(1000);
    expect(ws.config!.overallocation_limit).toBe(0);
  });

  it('B10 zero-initialised arrays in a reused workspace are zeros every cycle (testWorkspaceReuse)', async () => {
    const configs = [{ initial_size: 4096 }, { initial_size: 4096, mirroring_policy: 'MIRRORING_POLICY_HOST_ONLY' as const }, { initial_size: 4096, reset_policy: 'RESET_POLICY_ENDOFBUFFER_REACHED' as const, overallocation_limit: 1 }];
    for (const [i, cfg] of configs.entries()) {
      const ws = await lease.createWorkspace(`b10-${i}`, cfg);
      for (let c = 0; c < 4; c++) {
        await lease.enterWorkspace(ws.workspace_id);
        const a = await lease.allocate({ ...f64(64), zero: true });
        const got = await lease.read(a.array_id);
        expect(Buffer.from(got).every((b) => b === 0)).toBe(true);
        await lease.write(a.array_id, new Uint8Array(512).fill(7));
        const h = await lease.allocate({ ...f64(1000), zero: true }); // spill
        expect(Buffer.from(await lease.read(h.array_id)).every((b) => b === 0)).toBe(true);
        await lease.write(h.array_id, new Uint8Array(8000).fill(9));
        await lease.leaveWorkspace(ws.workspace_id);
      }
    }
  });

  it('B11 odd-size requests align to 16', async () => {
    const ws = await lease.createWorkspace('b11', { initial_size: 4096 });
    await lease.enterWorkspace(ws.workspace_id);
    await lease.allocate({ dataType: 'DATA_TYPE_INT8' as const, shape: [5] });
    expect((await lease.getWorkspace(ws.workspace_id)).primary_offset).toBe(16);
    await lease.allocate({ dataType: 'DATA_TYPE_FLOAT16' as const, shape: [9] });
    expect((await lease.getWorkspace(ws.workspace_id)).primary_offset).toBe(48);
    await lease.leaveWorkspace(ws.workspace_id);
  });
  it('B12 dup / leverageTo of a host array into a FULL workspace copies it there as a device array (PLACEMENT_UNSPECIFIED follows the workspace)', async () => {
    const source = await lease.allocate({ dataType: 'DATA_TYPE_FLOAT32', shape: [5], placement: 'PLACEMENT_HOST_ONLY' }); // 20 bytes -> 32
    await lease.write(source.array_id, new Uint8Array(20).fill(3));
    const ws = await lease.createWorkspace('b12', { initial_size: 1000, allocation_policy: 'ALLOCATION_POLICY_STRICT' });
    await lease.enterWorkspace(ws.workspace_id);
    const copy = await lease.duplicate(source.array_id);
    expect(copy).toMatchObject({ placement: 'PLACEMENT_DEVICE', attached: true, workspace_id: ws.workspace_id });
    expect(await lease.getWorkspace(ws.workspace_id)).toMatchObject({ device_offset: 32, this_cycle_allocations: 32 });
    expect(Buffer.from(await lease.read(copy.array_id))).toEqual(Buffer.alloc(20, 3));
    // Detached, the copy keeps the source's placement; an explicit HOST_ONLY into the FULL workspace is still refused.
    expect((await lease.duplicate(source.array_id, { detached: true })).placement).toBe('PLACEMENT_HOST_ONLY');
    expect((await failure(lease.duplicate(source.array_id, { placement: 'PLACEMENT_HOST_ONLY' }))).code).toBe(status.INVALID_ARGUMENT);
    await lease.leaveWorkspace(ws.workspace_id);
    // The other way round: a device array duplicated into a HOST_ONLY workspace is a host array there.
    const device = await lease.allocate({ dataType: 'DATA_TYPE_FLOAT32', shape: [5] });
    const hostWs = await lease.createWorkspace('b12-host', { initial_size: 1000, mirroring_policy: 'MIRRORING_POLICY_HOST_ONLY' });
    await lease.enterWorkspace(hostWs.workspace_id);
    expect(await lease.duplicate(device.array_id)).toMatchObject({ placement: 'PLACEMENT_HOST_ONLY', attached: true });
    expect((await lease.getWorkspace(hostWs.workspace_id)).host_offset).toBe(32);
    await lease.leaveWorkspace(hostWs.workspace_id);
  });
  it('B13 nothing is allocated or copied into a workspace whose scope is not open: the array would be out of scope at once (leaked)', async () => {
    const ws = await lease.createWorkspace('b13', { spill_policy: 'SPILL_POLICY_EXTERNAL' }); // FIRST_LOOP, size 0: every request would spill
    const source = await lease.allocate(f64(10));
    const before = await lease.getWorkspace(ws.workspace_id);
    const used = async () => (await client.memoryInfo()).devices[0].used_bytes;
    const usedBefore = await used();
    const arraysBefore = (await lease.list()).length;
    const expectRefused = async (call: Promise<unknown>) => {
      const refused = await failure(call);
      expect(refused.code).toBe(status.FAILED_PRECONDITION);
      expect(refused.reason).toBe('ARRAY_OUT_OF_SCOPE');
      expect(refused.details).toContain('Cannot place a new array in workspace "b13"');
      expect(refused.details).toContain('its scope is not open');
      expect(refused.errorMetadata).toMatchObject({ workspace_id: ws.workspace_id, workspace_name: 'b13' });
    };
    await expectRefused(lease.allocate({ ...f64(10), workspaceId: ws.workspace_id }));
    await expectRefused(lease.duplicate(source.array_id, { workspaceId: ws.workspace_id }));
    // Borrowed without an open scope it is current, and still not open.
    await lease.borrowWorkspace(ws.workspace_id);
    await expectRefused(lease.allocate(f64(10)));
    await lease.leaveWorkspace(ws.workspace_id);
    // Nothing changed: no spill taken from the pool, no counter moved, no array made.
    expect(await lease.getWorkspace(ws.workspace_id)).toEqual(before);
    expect(await used()).toBe(usedBefore);
    expect((await lease.list()).length).toBe(arraysBefore);
    // Open, the same calls attach.
    await lease.enterWorkspace(ws.workspace_id);
    expect((await lease.allocate({ ...f64(10), workspaceId: ws.workspace_id })).attached).toBe(true);
    expect((await lease.duplicate(source.array_id, { workspaceId: ws.workspace_id })).attached).toBe(true);
    await lease.leaveWorkspace(ws.workspace_id);
    // A circular workspace's arrays outlive their cycle: allocating into it between cycles is allowed and usable.
    const ring = await lease.createWorkspace('b13-ring', { initial_size: 4096, reset_policy: 'RESET_POLICY_ENDOFBUFFER_REACHED', allocation_policy: 'ALLOCATION_POLICY_STRICT', learning_policy: 'LEARNING_POLICY_NONE' });
    const kept = await lease.duplicate(source.array_id, { workspaceId: ring.workspace_id });
    expect((await lease.read(kept.array_id)).length).toBe(80);
  });

  /** One cycle of `sizes` doubles each; the info LeaveWorkspace answers. */
  const cycle = async (id: string, sizes: number[]) => {
    await lease.enterWorkspace(id);
    for (const n of sizes) await lease.allocate(f64(n));
    return lease.leaveWorkspace(id);
  };

  it('B14 OVER_TIME + REALLOCATE with initial_size: REALLOCATE grows at each close before cycles_before_initialization (the else-branch of §7.7); max_size stops growth once maxCycle reaches it', async () => {
    const ws = await lease.createWorkspace('b14', { initial_size: 1000, allocation_policy: 'ALLOCATION_POLICY_STRICT', learning_policy: 'LEARNING_POLICY_OVER_TIME', cycles_before_initialization: 3, spill_policy: 'SPILL_POLICY_REALLOCATE' });
    const sizes: number[] = [];
    for (const n of [250, 375, 100]) sizes.push((await cycle(ws.workspace_id, [n])).current_size); // 2000, 3000 -> 3008, 800
    expect(sizes).toEqual([2000, 3008, 3008]);
    // maxSize 3000: a cycle of 4000 does not grow it (maxCycle < maxSize fails), nor any later cycle.
    const capped = await lease.createWorkspace('b14-cap', { max_size: 3000, allocation_policy: 'ALLOCATION_POLICY_STRICT', spill_policy: 'SPILL_POLICY_REALLOCATE' });
    const rows: number[][] = [];
    for (const n of [126, 250, 500, 300]) {
      const info = await cycle(capped.workspace_id, [n]);
      rows.push([info.current_size, info.max_cycle_allocations]);
    }
    expect(rows).toEqual([[1008, 1008], [2000, 2000], [2000, 4000], [2000, 4000]]);
  });

  it('B15 circular STRICT, learning NONE: stepsNumber 1, the ring wraps and plans a reset; a request larger than the ring spills (ND4J recursed) and is freed at the next enter', async () => {
    const ws = await lease.createWorkspace('b15', { initial_size: 1024, reset_policy: 'RESET_POLICY_ENDOFBUFFER_REACHED', allocation_policy: 'ALLOCATION_POLICY_STRICT', learning_policy: 'LEARNING_POLICY_NONE' });
    const rows: number[][] = [];
    for (let i = 0; i < 4; i++) {
      const info = await cycle(ws.workspace_id, [50]);
      rows.push([info.primary_offset, info.step_number]);
    }
    expect(rows).toEqual([[400, 0], [800, 1], [400, 2], [800, 3]]);
    expect(await cycle(ws.workspace_id, [200])).toMatchObject({ primary_offset: 800, spilled_size: 1600, number_of_external_allocations: 1 });
    expect(await lease.enterWorkspace(ws.workspace_id)).toMatchObject({ spilled_size: 0, number_of_external_allocations: 0 });
    await lease.leaveWorkspace(ws.workspace_id);
  });

  it('B16 circular OVERALLOCATE 2.5: stepsNumber (int)(2.5 + 1) = 3; the block shift may pass current_size, and the next allocation wraps (§22.19)', async () => {
    const ws = await lease.createWorkspace('b16', { reset_policy: 'RESET_POLICY_ENDOFBUFFER_REACHED', overallocation_limit: 2.5 });
    const rows: number[][] = [];
    for (let i = 0; i < 7; i++) {
      const info = await cycle(ws.workspace_id, [i === 0 ? 100 : 50]);
      rows.push([info.step_number, info.primary_offset, info.number_of_external_allocations]);
    }
    // 800 learned: 1040 + 8 = 1048 block, 1048 + (long)(1048 * 2.5) = 3668 bytes.
    expect((await lease.getWorkspace(ws.workspace_id)).current_size).toBe(3668);
    expect(rows).toEqual([[0, 0, 1], [0, 1048, 1], [0, 2096, 1], [1, 3144, 1], [1, 4192, 1], [1, 1048, 0], [2, 2096, 0]]);
  });

  it('B17 circular FAIL cannot learn by a cycle (its first request is refused at size 0); InitializeWorkspace with nothing learned pads 0 to an 8-byte block', async () => {
    const ws = await lease.createWorkspace('b17', { reset_policy: 'RESET_POLICY_ENDOFBUFFER_REACHED', overallocation_limit: 1, spill_policy: 'SPILL_POLICY_FAIL' });
    await lease.enterWorkspace(ws.workspace_id);
    expect((await failure(lease.allocate(f64(100)))).code).toBe(status.RESOURCE_EXHAUSTED);
    expect(await lease.leaveWorkspace(ws.workspace_id)).toMatchObject({ current_size: 0, max_cycle_allocations: 0, spilled_size: 0 });
    expect(await lease.initializeWorkspace(ws.workspace_id)).toMatchObject({ current_size: 16, initial_block_size: 8, max_cycle_allocations: 8 });
  });

  it("B18 FULL sides: the host offset moves only with mirrors (a read), a mirror past the host side spills uncounted; a circular block shift moves the host offset too (CudaWorkspace)", async () => {
    const ws = await lease.createWorkspace('b18', { initial_size: 4096, allocation_policy: 'ALLOCATION_POLICY_STRICT' });
    await lease.enterWorkspace(ws.workspace_id);
    const a = await lease.allocate(f64(100));
    expect(await lease.getWorkspace(ws.workspace_id)).toMatchObject({ device_offset: 800, host_offset: 0, this_cycle_allocations: 800 });
    await lease.read(a.array_id);
    expect(await lease.getWorkspace(ws.workspace_id)).toMatchObject({ device_offset: 800, host_offset: 800, this_cycle_allocations: 800 });
    const c = await lease.allocate(f64(500)); // 880 + 4000 > 4096 on both sides
    await lease.read(c.array_id);
    expect(await lease.getWorkspace(ws.workspace_id)).toMatchObject({ device_offset: 800, host_offset: 800, this_cycle_allocations: 4800, spilled_size: 4000, number_of_external_allocations: 1 });
    expect(await lease.leaveWorkspace(ws.workspace_id)).toMatchObject({ device_offset: 0, host_offset: 0, spilled_size: 0 });
    const ring = await lease.createWorkspace('b18-ring', { reset_policy: 'RESET_POLICY_ENDOFBUFFER_REACHED', overallocation_limit: 1 });
    await cycle(ring.workspace_id, [100]);
    expect(await cycle(ring.workspace_id, [50])).toMatchObject({ device_offset: 1048, host_offset: 648 });
  });

  it("B19 CreateWorkspace without a config takes WorkspaceConfiguration's builder defaults (§1): FIRST_LOOP learns the first cycle, OVERALLOCATE 0.3 once, the EXTERNAL spill freed at the close", async () => {
    const ws = await lease.createWorkspace('b19');
    expect(ws.config).toMatchObject({
      initial_size: 0,
      min_size: 0,
      max_size: 0,
      overallocation_limit: 0.3,
      allocation_policy: 'ALLOCATION_POLICY_OVERALLOCATE',
      learning_policy: 'LEARNING_POLICY_FIRST_LOOP',
      spill_policy: 'SPILL_POLICY_EXTERNAL',
      reset_policy: 'RESET_POLICY_BLOCK_LEFT',
      mirroring_policy: 'MIRRORING_POLICY_FULL',
      location_policy: 'LOCATION_POLICY_RAM',
      cycles_before_initialization: 0,
    });
    expect(ws).toMatchObject({ current_size: 0, held_bytes: 0 });
    // 126 doubles = 1008 bytes: spilled at size 0, learned at the close: 1008 + (long)(1008 * 0.3) = 1310.
    await lease.enterWorkspace(ws.workspace_id);
    expect(await lease.allocate(f64(126))).toMatchObject({ attached: true });
    expect(await lease.getWorkspace(ws.workspace_id)).toMatchObject({ spilled_size: 1008, number_of_external_allocations: 1 });
    expect(await lease.leaveWorkspace(ws.workspace_id)).toMatchObject({ current_size: 1310, initial_block_size: 1008, spilled_size: 0, number_of_external_allocations: 0 });
    // EXTERNAL never grows once learned (testNestedWorkspaces8): a bigger cycle spills what does not fit.
    const rows: number[][] = [];
    for (let i = 0; i < 2; i++) {
      await lease.enterWorkspace(ws.workspace_id);
      await lease.allocate(f64(126)); // 1008: fits in 1310
      await lease.allocate(f64(126)); // 1008 more: 2016 > 1310, spilled
      const open = await lease.getWorkspace(ws.workspace_id);
      const left = await lease.leaveWorkspace(ws.workspace_id);
      rows.push([open.device_offset, open.spilled_size, left.current_size, left.max_cycle_allocations, left.spilled_size]);
    }
    expect(rows).toEqual([
      [1008, 1008, 1310, 2016, 0],
      [1008, 1008, 1310, 2016, 0],
    ]);
  });

  it('B20 min_size raises a learned, overallocated size and is not overallocated again; max_size still wins (§8)', async () => {
    const raised = await lease.createWorkspace('b20', { min_size: 5000 });
    expect((await cycle(raised.workspace_id, [126])).current_size).toBe(5000); // 1008 -> 1310 -> 5000, not 6500
    const capped = await lease.createWorkspace('b20-cap', { min_size: 5000, max_size: 3000 });
    expect((await cycle(capped.workspace_id, [126])).current_size).toBe(3000);
    const above = await lease.createWorkspace('b20-above', { min_size: 1000 });
    expect((await cycle(above.workspace_id, [126])).current_size).toBe(1310); // min_size below the learned size changes nothing
  });

  it('B21 HOST_ONLY with FIRST_LOOP learns from its host arrays (README: ND4J\'s CUDA backend never learns them) and then holds them in its host buffer', async () => {
    const hostBytes = async () => (await client.memoryInfo()).host!.host_only_bytes;
    const before = await hostBytes();
    const ws = await lease.createWorkspace('b21', { mirroring_policy: 'MIRRORING_POLICY_HOST_ONLY' });
    await lease.enterWorkspace(ws.workspace_id);
    expect(await lease.allocate(f64(126))).toMatchObject({ placement: 'PLACEMENT_HOST_ONLY', attached: true });
    expect(await lease.getWorkspace(ws.workspace_id)).toMatchObject({ host_offset: 0, this_cycle_allocations: 1008, spilled_size: 1008, number_of_external_allocations: 1 });
    expect(await lease.leaveWorkspace(ws.workspace_id)).toMatchObject({ current_size: 1310, max_cycle_allocations: 1008, spilled_size: 0, number_of_external_allocations: 0 });
    expect((await hostBytes()) - before).toBeGreaterThanOrEqual(1310 + 1024);
    await lease.enterWorkspace(ws.workspace_id);
    await lease.allocate(f64(126));
    expect(await lease.getWorkspace(ws.workspace_id)).toMatchObject({ host_offset: 1008, primary_offset: 1008, spilled_size: 0, number_of_external_allocations: 0 });
    await lease.leaveWorkspace(ws.workspace_id);
    await lease.destroyWorkspace(ws.workspace_id);
    expect(await hostBytes()).toBe(before);
  });

  it('B23 at the device cap (--maxbytes 64M) a spill and a workspace buffer are refused before anything is taken: DEVICE_OUT_OF_MEMORY, the workspace and the pool as they were (DESIGN.md §4)', async () => {
    const used = async () => (await client.memoryInfo()).devices[0].used_bytes;
    const ws = await lease.createWorkspace('b23', { initial_size: 1024, allocation_policy: 'ALLOCATION_POLICY_STRICT', learning_policy: 'LEARNING_POLICY_NONE' });
    await lease.enterWorkspace(ws.workspace_id);
    await lease.allocate(f64(2));
    const before = await lease.getWorkspace(ws.workspace_id);
    const usedBefore = await used();
    const spill = await failure(lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [65 * 1024 * 1024] }));
    expect([spill.code, spill.reason]).toEqual([status.RESOURCE_EXHAUSTED, 'DEVICE_OUT_OF_MEMORY']);
    expect(await lease.getWorkspace(ws.workspace_id)).toEqual(before);
    expect(await used()).toBe(usedBefore);
    await lease.leaveWorkspace(ws.workspace_id);
    // 50 MiB overallocated by 0.3 (the default) is 65 MiB, past the cap.
    const names = (await lease.listWorkspaces()).map((w) => w.name);
    const buffer = await failure(lease.createWorkspace('b23-big', { initial_size: 50 * 1024 * 1024 }));
    expect(buffer.details).toContain(`Can't allocate [DEVICE] memory: ${50 * 1024 * 1024 + Math.trunc(50 * 1024 * 1024 * 0.3) + 1024} bytes`);
    expect([buffer.code, buffer.reason]).toEqual([status.RESOURCE_EXHAUSTED, 'DEVICE_OUT_OF_MEMORY']);
    expect((await lease.listWorkspaces()).map((w) => w.name)).toEqual(names);
    expect(await used()).toBe(usedBefore);
  });

  it('B22 an empty array is never attached and moves no offset (§12); ScopeOut with no current workspace opens nothing (a DummyWorkspace, §2)', async () => {
    const ws = await lease.createWorkspace('b22', { initial_size: 1024 });
    await lease.enterWorkspace(ws.workspace_id);
    const empty = await lease.allocate({ dataType: 'DATA_TYPE_FLOAT64', shape: [0] });
    expect(empty).toMatchObject({ attached: false, workspace_id: '', byte_size: 0 });
    expect(await lease.getWorkspace(ws.workspace_id)).toMatchObject({ device_offset: 0, this_cycle_allocations: 0 });
    expect((await lease.allocate(f64(1))).attached).toBe(true);
    await lease.leaveWorkspace(ws.workspace_id);
    expect(await lease.scopeOut()).toBeNull();
    expect((await lease.allocate(f64(1))).attached).toBe(false);
    // Nothing was opened: no scope to leave.
    expect((await failure(lease.leaveWorkspace(ws.workspace_id))).code).toBe(status.FAILED_PRECONDITION);
  });
});
