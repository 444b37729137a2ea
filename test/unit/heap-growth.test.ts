/**
 * HeapGrowth (src/heap-growth.ts): --heap-growth while idle, V8's own largest growth while a bulk
 * stream is in flight, back to --heap-growth when the last one ends; nothing at all with 0.
 */
import { describe, expect, it } from 'vitest';
import { HeapGrowth, STREAMING_HEAP_GROWTH_PERCENT } from '../../src/heap-growth';

describe('HeapGrowth', () => {
  it('sets --heap-growth at once, the streaming growth for the first bulk stream, and --heap-growth again after the last', () => {
    const set: number[] = [];
    const growth = new HeapGrowth(10, (percent) => set.push(percent));
    expect(set).toEqual([10]);
    const endFirst = growth.beginBulkStream();
    const endSecond = growth.beginBulkStream();
    expect(set).toEqual([10, STREAMING_HEAP_GROWTH_PERCENT]);
    expect(growth.streamsInFlight).toBe(2);
    endFirst();
    endFirst(); // a second call of the same end does nothing
    expect(set).toEqual([10, STREAMING_HEAP_GROWTH_PERCENT]);
    expect(growth.streamsInFlight).toBe(1);
    endSecond();
    expect(set).toEqual([10, STREAMING_HEAP_GROWTH_PERCENT, 10]);
    expect(growth.streamsInFlight).toBe(0);
    growth.beginBulkStream()();
    expect(set).toEqual([10, STREAMING_HEAP_GROWTH_PERCENT, 10, STREAMING_HEAP_GROWTH_PERCENT, 10]);
  });

  it('with --heap-growth 0 leaves V8 alone: no flag set, streams or not', () => {
    const set: number[] = [];
    const growth = new HeapGrowth(0, (percent) => {
      if (percent > 0) set.push(percent);
    });
    growth.beginBulkStream()();
    expect(set).toEqual([]);
  });
});
