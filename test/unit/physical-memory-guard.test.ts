/** --maxphysicalbytes counts max(RSS, RSS at start + host-RAM chunks held), so a chunk is charged when taken, not when written. */
import { describe, expect, it } from 'vitest';
import { PhysicalMemoryLimitError } from '../../src/errors';
import { PhysicalMemoryGuard } from '../../src/memory/physical-memory-guard';

describe('PhysicalMemoryGuard chunk counting', () => {
  it('refuses on chunks held but not yet resident, with both figures in the error', () => {
    let resident = 100;
    let chunks = 0;
    const guard = new PhysicalMemoryGuard(1000, () => {}, () => resident);
    guard.countChunks(() => chunks);
    resident = 120; // the baseline is the RSS at countChunks (100), not now
    chunks = 800; // taken, never written: RSS does not move
    expect(guard.countedBytes()).toBe(900);
    guard.check(100);
    let error: unknown;
    try {
      guard.check(101);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(PhysicalMemoryLimitError);
    const refusal = error as PhysicalMemoryLimitError;
    expect(refusal.physicalBytes).toBe(900);
    expect(refusal.message).toContain('physicalBytes 900 bytes (900 B) + request 101 bytes (101 B) > maxPhysicalBytes 1000 bytes (1000 B)');
    expect(refusal.message).toContain('physicalBytes is the larger of RSS 120 bytes (120 B) and RSS at start 100 bytes (100 B) + host-RAM chunks held 800 bytes (800 B). Try:');
    expect(refusal.metadata).toMatchObject({ physical_bytes: '900', rss_bytes: '120', baseline_rss_bytes: '100', chunk_bytes: '800', requested_bytes: '101', max_physical_bytes: '1000' });
    // GetMemoryInfo's physical_bytes stays the RSS.
    expect(guard.physicalBytes()).toBe(120);
  });

  it('keeps RSS as the figure when it is the larger', () => {
    let resident = 100;
    const guard = new PhysicalMemoryGuard(1000, () => {}, () => resident);
    guard.countChunks(() => 200);
    resident = 950;
    expect(guard.countedBytes()).toBe(950);
    guard.check(50);
    expect(() => guard.check(51)).toThrowError(/physicalBytes 950 bytes/);
  });

  it('checks again after relief gives chunks back', () => {
    let chunks = 900;
    let reliefCalls = 0;
    const guard = new PhysicalMemoryGuard(1000, () => {
      reliefCalls++;
      chunks = 0;
    }, () => 50);
    guard.countChunks(() => chunks);
    guard.check(500);
    expect(reliefCalls).toBe(1);
  });

  it('asks for relief twice at most, synchronously, then refuses (JavaCPP: up to maxRetries = 10 System.gc() calls, 100 ms apart)', () => {
    let reliefCalls = 0;
    const guard = new PhysicalMemoryGuard(1000, () => reliefCalls++, () => 50);
    guard.countChunks(() => 900);
    expect(() => guard.check(51)).toThrow(PhysicalMemoryLimitError);
    expect(reliefCalls).toBe(2);
    // Relief that frees enough on the second try lets the request through.
    let chunks = 900;
    reliefCalls = 0;
    const second = new PhysicalMemoryGuard(1000, () => {
      if (++reliefCalls === 2) chunks = 0;
    }, () => 50);
    second.countChunks(() => chunks);
    second.check(51);
    expect(reliefCalls).toBe(2);
  });
});
