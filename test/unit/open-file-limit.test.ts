/** The open-file limit read from /proc/self/limits, and the connection caps it leads to (data plane, gRPC). */
import { describe, expect, it } from 'vitest';
import { DATA_PLANE_SHARE, GRPC_SHARE, connectionCapFor, openFileLimit } from '../../src/config/open-file-limit';

const limits = (soft: string) => `Limit                     Soft Limit           Hard Limit           Units\nMax processes             127663               127663               processes\nMax open files            ${soft}                 4096                 files\n`;

describe('open-file limit', () => {
  it('reads the soft limit, and nothing when it is unlimited or missing', () => {
    expect(openFileLimit(limits('1024'))).toBe(1024);
    expect(openFileLimit(limits('unlimited'))).toBeUndefined();
    expect(openFileLimit('Max processes 10 10 processes\n')).toBeUndefined();
    expect(openFileLimit()).toBeGreaterThan(0); // this process's own, on Linux
  });

  it('caps data plane connections at half the soft limit when that is below the default, at least 16', () => {
    expect(connectionCapFor(1024, 1024, DATA_PLANE_SHARE)).toBe(512);
    expect(connectionCapFor(65536, 1024, DATA_PLANE_SHARE)).toBe(1024);
    expect(connectionCapFor(20, 1024, DATA_PLANE_SHARE)).toBe(16);
    expect(connectionCapFor(undefined, 1024, DATA_PLANE_SHARE)).toBe(1024);
  });

  it('caps gRPC connections (per listener) at a quarter of the soft limit shared by the listeners when that is below the default, at least 16', () => {
    expect(connectionCapFor(1024, 1024, GRPC_SHARE)).toBe(256);
    expect(connectionCapFor(1024, 1024, GRPC_SHARE / 2)).toBe(128);
    expect(connectionCapFor(65536, 1024, GRPC_SHARE)).toBe(1024);
    expect(connectionCapFor(40, 1024, GRPC_SHARE)).toBe(16);
  });
});
