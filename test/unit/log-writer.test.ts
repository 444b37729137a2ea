import { afterEach, describe, expect, it, vi } from 'vitest';
import { LogWriter } from '../../src/observability/log-writer';

function errno(code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(code), { code });
}

/** A descriptor that takes `room` bytes, then answers EAGAIN until more room is given. */
function fakePipe() {
  const pipe = { taken: '', room: Infinity, calls: 0, fail: undefined as string | undefined };
  const writeSync = (_fd: number, data: Buffer) => {
    pipe.calls++;
    if (pipe.fail) throw errno(pipe.fail);
    if (pipe.room === 0) throw errno('EAGAIN');
    const n = Math.min(pipe.room, data.length);
    pipe.taken += data.subarray(0, n).toString();
    pipe.room -= n;
    return n;
  };
  return { pipe, writeSync };
}

describe('LogWriter', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('writes at once while the descriptor takes the lines', () => {
    const { pipe, writeSync } = fakePipe();
    const writer = new LogWriter(2, { writeSync });
    writer.write('a\n');
    writer.write('b\n');
    expect(pipe.taken).toBe('a\nb\n');
    expect(writer.backlogBytes).toBe(0);
  });

  it('holds lines a full descriptor does not take, in order, ends a half-written line first, and writes them once it takes again', () => {
    vi.useFakeTimers();
    const { pipe, writeSync } = fakePipe();
    const writer = new LogWriter(2, { writeSync, retryMs: 50 });
    pipe.room = 3;
    writer.write('first\n');
    writer.write('second\n');
    expect(pipe.taken).toBe('fir');
    expect(writer.backlogBytes).toBe(3 + 7);
    vi.advanceTimersByTime(50);
    expect(pipe.taken).toBe('fir');
    pipe.room = Infinity;
    vi.advanceTimersByTime(50);
    expect(pipe.taken).toBe('first\nsecond\n');
    expect(writer.backlogBytes).toBe(0);
  });

  it('drops the lines past maxQueuedBytes, counts them and says how many once the backlog is written', () => {
    vi.useFakeTimers();
    const { pipe, writeSync } = fakePipe();
    const dropped: number[] = [];
    const writer = new LogWriter(2, { writeSync, maxQueuedBytes: 10, retryMs: 50 });
    writer.onDropped = (count) => dropped.push(count);
    pipe.room = 0;
    for (let i = 0; i < 5; i++) writer.write(`${i}___\n`);
    expect(writer.backlogBytes).toBe(10);
    pipe.room = Infinity;
    vi.advanceTimersByTime(50);
    expect(pipe.taken).toBe('0___\n1___\n');
    expect(dropped).toEqual([3]);
  });

  it('turns off at EPIPE: no more writes, no backlog', () => {
    const { pipe, writeSync } = fakePipe();
    const writer = new LogWriter(2, { writeSync });
    pipe.fail = 'EPIPE';
    writer.write('a\n');
    writer.write('b\n');
    expect(pipe.calls).toBe(1);
    expect(writer.backlogBytes).toBe(0);
  });

  it('flushSync at exit gives up after exitFlushMs on a descriptor that takes nothing', () => {
    const { pipe, writeSync } = fakePipe();
    const writer = new LogWriter(2, { writeSync, exitFlushMs: 100 });
    pipe.room = 0;
    writer.write('held\n');
    const started = performance.now();
    writer.flushSync();
    const took = performance.now() - started;
    expect(took).toBeGreaterThanOrEqual(90);
    expect(took).toBeLessThan(1000);
    expect(writer.backlogBytes).toBe(5);
  });

  it('flushSync writes the backlog a descriptor takes again', () => {
    const { pipe, writeSync } = fakePipe();
    const writer = new LogWriter(2, { writeSync });
    pipe.room = 0;
    writer.write('held\n');
    pipe.room = Infinity;
    writer.flushSync();
    expect(pipe.taken).toBe('held\n');
  });
});
