/** AllocateArray with wait_for_memory into a workspace: a request that needs fresh device memory (a spill) waits as a detached one does. */
import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { daemonForTests } from '../helpers/daemon-for-tests';
import { failure } from '../helpers/thrown';

const MiB = 1024 * 1024;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('wait_for_memory into a workspace', () => {
  const running = daemonForTests(['--maxbytes', '16M', '--pool-chunk', '4M']);

  const device = async () => (await running.client.memoryInfo()).devices[0];
  const used = async () => (await device()).used_bytes;
  /** A holder tenant with 12 of the 16 MiB, and a trainer tenant inside a fresh FIRST_LOOP workspace of no initial size. */
  const heldAndTraining = async () => {
    const holder = await running.client.openLease({ tenant: 'holder' });
    const held = await holder.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [12 * MiB] });
    const trainer = await running.client.openLease({ tenant: 'trainer' });
    try {
      const ws = await trainer.createWorkspace('LOOP', { initial_size: 0, learning_policy: 'LEARNING_POLICY_FIRST_LOOP' });
      await trainer.enterWorkspace(ws.workspace_id);
      return { holder, held, trainer, ws };
    } catch (error) {
      await Promise.all([trainer.close(), holder.close()]);
      throw error;
    }
  };

  it('waits for another tenant to free when the first (learning) cycle spills', async () => {
    const failedBefore = (await device()).failed_allocations_total;
    const { holder, held, trainer, ws } = await heldAndTraining();
    try {
      const started = Date.now();
      const pending = trainer.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [8 * MiB], waitForMemory: true, deadlineMs: 10_000 }).catch((e: unknown) => e);
      await sleep(300);
      // Counted as a waiting allocation, and its refusal once, as a detached request's.
      expect((await device()).waiting_allocations).toBe(1);
      await holder.free(held.array_id);
      const array = await pending;
      if (array instanceof Error) throw array;
      expect((array as { attached: boolean }).attached).toBe(true);
      expect(Date.now() - started).toBeGreaterThanOrEqual(300);
      expect(await used()).toBe(8 * MiB);
      expect(await trainer.getWorkspace(ws.workspace_id)).toMatchObject({ this_cycle_allocations: 8 * MiB, spilled_size: 8 * MiB, number_of_external_allocations: 1 });
      expect((await device()).failed_allocations_total).toBe(failedBefore + 1);
      // The cycle ends as any other: it learns from the spill.
      await trainer.leaveWorkspace(ws.workspace_id);
      expect((await trainer.getWorkspace(ws.workspace_id)).current_size).toBeGreaterThanOrEqual(8 * MiB);
    } finally {
      await trainer.close();
      await holder.close();
    }
  });

  it('ends the wait at once, changing nothing, when the workspace moves on meanwhile (left by another call, destroyed)', async () => {
    const { holder, held, trainer, ws } = await heldAndTraining();
    try {
      const pending = failure(trainer.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [8 * MiB], waitForMemory: true, deadlineMs: 10_000 }));
      await sleep(300);
      const started = Date.now();
      await trainer.leaveWorkspace(ws.workspace_id);
      const error = await pending;
      expect(error.code).toBe(status.FAILED_PRECONDITION);
      expect(error.reason).toBe('ARRAY_OUT_OF_SCOPE');
      expect(error.details).toMatch(/left its scope while this allocation waited/);
      expect(Date.now() - started).toBeLessThan(2_000);
      expect((await device()).waiting_allocations).toBe(0);
      // A free now serves no one: the next cycle has nothing of the old request.
      await holder.free(held.array_id);
      await sleep(200);
      expect(await used()).toBe(0);
      await trainer.enterWorkspace(ws.workspace_id);
      expect(await trainer.getWorkspace(ws.workspace_id)).toMatchObject({ this_cycle_allocations: 0, spilled_size: 0, number_of_external_allocations: 0, current_size: 0 });
      expect(await trainer.list()).toEqual([]);
      await trainer.leaveWorkspace(ws.workspace_id);

      // Named by id without a scope open, then destroyed: a circular workspace, whose arrays outlive their
      // cycle (any other refuses an array outside its scope at once); 8 MiB spills past its 4 KiB ring.
      const refill = await holder.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [12 * MiB] });
      const other = await trainer.createWorkspace('OTHER', {
        initial_size: 4096,
        reset_policy: 'RESET_POLICY_ENDOFBUFFER_REACHED',
        allocation_policy: 'ALLOCATION_POLICY_STRICT',
        learning_policy: 'LEARNING_POLICY_NONE',
      });
      const doomed = failure(trainer.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [8 * MiB], workspaceId: other.workspace_id, waitForMemory: true, deadlineMs: 10_000 }));
      await sleep(300);
      await trainer.destroyWorkspace(other.workspace_id);
      const destroyed = await doomed;
      expect(destroyed.code).toBe(status.FAILED_PRECONDITION);
      expect(destroyed.details).toMatch(/was destroyed while this allocation waited/);
      await holder.free(refill.array_id);
      await sleep(200);
      expect(await used()).toBe(0);
    } finally {
      await trainer.close();
      await holder.close();
    }
  });

  it('gives up at the deadline, or when the lease closes, leaving the workspace as it was', async () => {
    const { holder, held, trainer, ws } = await heldAndTraining();
    try {
      // Frees that still leave too little: each a retry, the request's refusal counted once.
      const small = [await holder.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [MiB] }), await holder.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [MiB] })];
      const failedBefore = (await device()).failed_allocations_total;
      const pending = failure(trainer.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [8 * MiB], waitForMemory: true, deadlineMs: 1_000 }));
      for (const array of small) {
        await sleep(200);
        await holder.free(array.array_id);
      }
      const late = await pending;
      expect(late.code).toBe(status.DEADLINE_EXCEEDED);
      expect((await device()).failed_allocations_total).toBe(failedBefore + 1);
      expect(await trainer.getWorkspace(ws.workspace_id)).toMatchObject({ this_cycle_allocations: 0, spilled_size: 0, number_of_external_allocations: 0 });
      const closing = failure(trainer.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [8 * MiB], waitForMemory: true, deadlineMs: 10_000 }));
      await sleep(300);
      await trainer.close();
      const closed = await closing;
      expect(closed.code).toBe(status.UNAUTHENTICATED);
      expect(closed.reason).toBe('LEASE_EXPIRED');
      await holder.free(held.array_id);
      await sleep(200);
      expect(await used()).toBe(0);
      expect((await device()).waiting_allocations).toBe(0);
    } finally {
      await trainer.close().catch(() => undefined);
      await holder.close();
    }
  });

  it('serves a request that fits the workspace buffer at once while others wait, and queues a spill behind them', async () => {
    const holder = await running.client.openLease({ tenant: 'holder' });
    const trainer = await running.client.openLease({ tenant: 'trainer' });
    const stuck = await running.client.openLease({ tenant: 'trainer' });
    const other = await running.client.openLease({ tenant: 'other' });
    try {
      // A learned workspace of 1 MiB (its buffer taken now), then the pool filled.
      const ws = await trainer.createWorkspace('LEARNED', { initial_size: MiB, learning_policy: 'LEARNING_POLICY_NONE', spill_policy: 'SPILL_POLICY_EXTERNAL' });
      const held = [];
      for (let i = 0; i < 3; i++) held.push(await holder.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [4 * MiB] }));
      // The same tenant already waits for more than there is.
      const waiting = failure(stuck.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [12 * MiB], waitForMemory: true, deadlineMs: 1_500 }));
      await sleep(200);
      await trainer.enterWorkspace(ws.workspace_id);
      const started = Date.now();
      const inBuffer = await trainer.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [256 * 1024], waitForMemory: true, deadlineMs: 10_000 });
      expect(inBuffer.attached).toBe(true);
      expect(Date.now() - started).toBeLessThan(1_000);
      expect((await waiting).code).toBe(status.DEADLINE_EXCEEDED);

      // Now another tenant waits for 8 MiB, and the workspace then spills 4 MiB: the spill takes its turn behind it.
      const first = failure(other.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [8 * MiB], waitForMemory: true, deadlineMs: 10_000 }));
      await sleep(200);
      const spill = trainer.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [4 * MiB], waitForMemory: true, deadlineMs: 10_000 });
      await sleep(200);
      expect((await device()).waiting_allocations).toBe(2);
      await holder.free(held[0].array_id);
      await sleep(200);
      // 4 MiB free: enough for the spill, not for the request ahead of it in turn; the spill is not held up by it.
      expect((await spill).attached).toBe(true);
      expect((await device()).waiting_allocations).toBe(1);
      await other.close();
      expect((await first).code).toBe(status.UNAUTHENTICATED);
    } finally {
      await other.close().catch(() => undefined);
      await stuck.close();
      await trainer.close();
      await holder.close();
    }
    expect(await used()).toBe(0);
  });
});
