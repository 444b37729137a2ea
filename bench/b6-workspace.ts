/**
 * B6: a workspace training loop through gRPC. One lease creates a workspace with ND4J's defaults
 * (FIRST_LOOP learning, OVERALLOCATE 0.3), runs one learning cycle of `allocations` AllocateArray calls
 * (FLOAT32 arrays of varying shape), then `cycles` more. The device pool's allocations_total (blocks
 * handed out since start) before and after the learned cycles gives the backend allocations per cycle;
 * the target is 0. The cycle time is reported for information.
 */
import { TensormemClient } from '../src/client/tensormem-client';
import { startDaemon } from './lib/daemon';
import { Row } from './lib/report';
import { nowNs, usSince } from './lib/stats';
import type { BenchOptions } from './options';

export const B6_WHAT = 'workspace loop, 1000 allocations/cycle';
export const B6_TARGET = '0 backend allocs/cycle';

export async function runB6(options: BenchOptions, daemonFlags: string[]): Promise<Row> {
  const allocations = 1000;
  const cycles = options.quick ? 3 : 10;
  const daemon = await startDaemon(daemonFlags);
  const client = new TensormemClient(options.transport === 'unix' ? daemon.unixAddress : daemon.tcpAddress);
  try {
    const lease = await client.openLease({ clientName: 'bench-b6', ttlSeconds: 3600 });
    const ws = await lease.createWorkspace('B6_LOOP');
    const cycle = async () => {
      await lease.enterWorkspace(ws.workspace_id);
      for (let i = 0; i < allocations; i++) await lease.allocate({ dataType: 'DATA_TYPE_FLOAT32', shape: [16 + (i % 37), 4] });
      return lease.leaveWorkspace(ws.workspace_id);
    };
    const learned = await cycle();
    const before = (await client.memoryInfo()).devices[0];
    const start = nowNs();
    for (let c = 0; c < cycles; c++) await cycle();
    const cycleMs = usSince(start) / 1000 / cycles;
    const after = (await client.memoryInfo()).devices[0];
    const perCycle = (Number(after.allocations_total) - Number(before.allocations_total)) / cycles;
    const info = await lease.getWorkspace(ws.workspace_id);
    return {
      id: 'B6',
      what: B6_WHAT,
      measured: `${perCycle} allocs/cycle`,
      baseline: '—',
      ratio: '—',
      target: B6_TARGET,
      status: perCycle === 0 && Number(info.spilled_size) === 0 ? 'pass' : 'fail',
      values: { cycles, allocationsPerCycle: allocations, backendAllocationsPerCycle: perCycle, learnedSizeBytes: Number(learned.current_size), cycleMs },
      note: `B6: learned ${learned.current_size} bytes in the first cycle; then ${cycles} cycles of ${allocations} AllocateArray calls, ${cycleMs.toFixed(0)} ms a cycle, pool allocations_total moved by ${perCycle * cycles}`,
    };
  } finally {
    client.close();
    await daemon.stop();
  }
}
