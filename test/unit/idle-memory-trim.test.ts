/** The idle memory trim: once per burst, only after an interval with no activity, and only for growth the pools' chunks do not explain. */
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { IDLE_TRIM_CHECK_MS, IDLE_TRIM_GROWTH_BYTES, IDLE_TRIM_SETTLE_MS, startIdleMemoryTrim } from '../../src/memory/idle-memory-trim';

describe('startIdleMemoryTrim', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  /** `state.unexplained` drops to 0 when the heap is trimmed, as a trim that gives everything back would. */
  function started(state: { activity: number; unexplained: number }, collect: () => void = () => {}) {
    const lines: Array<Record<string, unknown>> = [];
    const log = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) });
    const calls: string[] = [];
    const stop = startIdleMemoryTrim(
      {
        activity: () => state.activity,
        unexplainedBytes: () => state.unexplained,
        collect: () => {
          calls.push('collect');
          collect();
        },
        trimHeap: () => {
          calls.push('trimHeap');
          state.unexplained = 0;
        },
        residentBytes: () => 100 + state.unexplained,
      },
      log,
    );
    return { calls, lines, stop };
  }

  it('collects once a burst has grown RSS by IDLE_TRIM_GROWTH_BYTES and then been idle for an interval, trims the C heap after, then waits for the next burst', () => {
    const state = { activity: 0, unexplained: 0 };
    const { calls, lines, stop } = started(state);
    // Busy at each check: nothing, however much RSS grew.
    for (let check = 1; check <= 3; check++) {
      state.activity++;
      state.unexplained += IDLE_TRIM_GROWTH_BYTES;
      vi.advanceTimersByTime(IDLE_TRIM_CHECK_MS);
    }
    expect(calls).toEqual([]);
    vi.advanceTimersByTime(IDLE_TRIM_CHECK_MS);
    expect(calls).toEqual(['collect']);
    vi.advanceTimersByTime(IDLE_TRIM_SETTLE_MS);
    expect(calls).toEqual(['collect', 'trimHeap']);
    expect(lines.filter((line) => line.event === 'idle_memory_trimmed').map((line) => [line.rssBefore, line.rssAfter])).toEqual([[100 + 3 * IDLE_TRIM_GROWTH_BYTES, 100]]);
    // Idle for long after: nothing more to give back.
    vi.advanceTimersByTime(10 * IDLE_TRIM_CHECK_MS);
    expect(calls).toHaveLength(2);
    // A burst that grew RSS by less is not worth full collections.
    state.activity++;
    state.unexplained = IDLE_TRIM_GROWTH_BYTES - 1;
    vi.advanceTimersByTime(3 * IDLE_TRIM_CHECK_MS);
    expect(calls).toHaveLength(2);
    // Growth is counted from the lowest figure seen since the last trim.
    state.unexplained = IDLE_TRIM_GROWTH_BYTES;
    vi.advanceTimersByTime(IDLE_TRIM_CHECK_MS + IDLE_TRIM_SETTLE_MS);
    expect(calls).toEqual(['collect', 'trimHeap', 'collect', 'trimHeap']);
    stop();
    state.activity++;
    state.unexplained = 4 * IDLE_TRIM_GROWTH_BYTES;
    vi.advanceTimersByTime(3 * IDLE_TRIM_CHECK_MS);
    expect(calls).toHaveLength(4);
  });

  it('does nothing while a burst leaves only what the pools explain (RSS less their chunks did not grow)', () => {
    const state = { activity: 1, unexplained: 10 * 1024 * 1024 };
    const { calls, stop } = started(state);
    state.activity++;
    vi.advanceTimersByTime(5 * IDLE_TRIM_CHECK_MS);
    expect(calls).toEqual([]);
    stop();
  });

  it('logs a collection that throws and tries again at the next check', () => {
    const state = { activity: 0, unexplained: 0 };
    let fail = true;
    const { calls, lines, stop } = started(state, () => {
      if (fail) throw new Error('no gc');
    });
    state.unexplained = IDLE_TRIM_GROWTH_BYTES;
    vi.advanceTimersByTime(IDLE_TRIM_CHECK_MS);
    expect(lines.find((line) => line.event === 'idle_memory_trim_failed')?.msg).toContain('no gc');
    fail = false;
    vi.advanceTimersByTime(IDLE_TRIM_CHECK_MS + IDLE_TRIM_SETTLE_MS);
    expect(calls).toEqual(['collect', 'collect', 'trimHeap']);
    stop();
  });
});
