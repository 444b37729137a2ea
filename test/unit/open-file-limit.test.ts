/** The open-file limit read from /proc/self/limits, and the data plane's connection cap it leads to. */
import { describe, expect, it } from 'vitest';
import { dataMaxConnectionsFor, openFileLimit } from '../../src/config/open-file-limit';

const limits = (soft: string) => `Limit                     Soft Limit           Hard Limit           Units\nMax processes             127663               127663               processes\nMax open files            ${soft}                 4096                 files\n`;

describe('open-file limit', () => {
  it('reads the soft limit, and nothing when it is unlimited or missing', () => {
    expect(openFileLimit(limits('1024'))).toBe(1024);
    expect(openFileLimit(limits('unlimited'))).toBeUndefined();
    expect(openFileLimit('Max processes 10 10 processes\n')).toBeUndefined();
    expect(openFileLimit()).toBeGreaterThan(0); // this process's own, on Linux
  });

  it('caps data plane connections at half the soft limit when that is below the default, at least 16', () => {
    expect(dataMaxConnectionsFor(1024, 1024)).toBe(512);
    expect(dataMaxConnectionsFor(65536, 1024)).toBe(1024);
    expect(dataMaxConnectionsFor(20, 1024)).toBe(16);
    expect(dataMaxConnectionsFor(undefined, 1024)).toBe(1024);
  });
});
