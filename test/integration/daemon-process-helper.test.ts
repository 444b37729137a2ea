/**
 * test/helpers/daemon-process.ts itself: its 20 s start timeout kills a daemon that never says
 * "listening", and only such a daemon (one that started must outlive it: a test file runs for minutes).
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { startDaemon } from '../helpers/daemon-process';

describe('startDaemon', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('leaves a daemon that started running past its 20 s start timeout', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const daemon = await startDaemon();
    try {
      vi.advanceTimersByTime(25_000);
      expect(daemon.child.killed).toBe(false);
    } finally {
      vi.useRealTimers();
      expect(await daemon.stop()).toBe(0);
    }
  });

  it('kills a daemon that does not say "listening" within 20 s', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    // --log-level warn hides the "listening" line: the daemon runs, the helper never sees it start.
    const starting = startDaemon(['--log-level', 'warn']);
    const outcome = starting.then(
      () => 'started',
      (error: Error) => error.message,
    );
    vi.advanceTimersByTime(20_001);
    expect(await outcome).toMatch(/did not start in 20 s/);
  });
});
