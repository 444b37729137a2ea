/** setLongInterval: a period of any length, stopped from outside or from its own callback. */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { MAX_TIMER_MS, setLongInterval } from '../../src/long-timeout';

describe('setLongInterval', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('calls back every period past MAX_TIMER_MS (setInterval would every millisecond), until stopped', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'] });
    let fired = 0;
    const stop = setLongInterval(() => fired++, MAX_TIMER_MS + 10);
    vi.advanceTimersByTime(MAX_TIMER_MS);
    expect(fired).toBe(0);
    vi.advanceTimersByTime(10);
    expect(fired).toBe(1);
    vi.advanceTimersByTime(MAX_TIMER_MS + 9);
    expect(fired).toBe(1);
    vi.advanceTimersByTime(1);
    expect(fired).toBe(2);
    stop();
    vi.advanceTimersByTime(3 * MAX_TIMER_MS);
    expect(fired).toBe(2);
  });

  it('stops from within its callback, a short period and a long one alike', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'] });
    for (const periodMs of [50, MAX_TIMER_MS, MAX_TIMER_MS + 1]) {
      let fired = 0;
      const stop: () => void = setLongInterval(() => {
        if (++fired === 2) stop();
      }, periodMs);
      vi.advanceTimersByTime(5 * periodMs);
      expect(fired, `period ${periodMs}`).toBe(2);
    }
  });
});
