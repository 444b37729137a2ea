/**
 * Host memory the system refuses, not --host-maxbytes: an exportable HOST_ONLY array is a shared-memory
 * object of its own, and /dev/shm (a 1 MiB tmpfs, seen by the daemon alone) has no room for it. The
 * refusal named "emulated device capacity 0 bytes (0 B)" for host memory and advised "a larger
 * --host-maxbytes", with 252 MiB of that cap free: the seed's advice for a refused allocation is to
 * check the limit against what the machine can give, not to raise it past that.
 */
import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { daemonForTests } from '../helpers/daemon-for-tests';
import { failure } from '../helpers/thrown';
import { tinyFilesystemPrefix, tinyFilesystemUnavailable } from '../helpers/tiny-filesystem';

const MiB = 1024 * 1024;
const skipReason = tinyFilesystemUnavailable('/dev/shm');

describe.skipIf(skipReason !== undefined)(`host memory the system refuses${skipReason ? ` — skipped: ${skipReason}` : ''}`, () => {
  const running = daemonForTests(['--host-maxbytes', '256M'], { prefix: tinyFilesystemPrefix('/dev/shm', '1m', '1777') });

  it('says the system refused it, with the host cap and its numbers, and does not advise a larger --host-maxbytes', async () => {
    const lease = await running.client.openLease({ clientName: 'shm-full' });
    const refused = await failure(lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [4 * MiB], placement: 'PLACEMENT_HOST_ONLY', exportable: true }));
    expect([refused.code, refused.reason], refused.message).toEqual([status.RESOURCE_EXHAUSTED, 'HOST_OUT_OF_MEMORY']);
    expect(refused.details).toMatch(
      /^Can't allocate \[HOST\] memory: 4194304 bytes \(4\.00 MiB\): host cap \(host-maxbytes\) 268435456 bytes \(256\.00 MiB\), used 0 bytes \(0 B\), largest free block 0 bytes \(0 B\); the system refused it, not the host cap: cannot reserve 4194304 bytes \(4\.00 MiB\) for shared-memory object ".*": \/dev\/shm is full\. Try: /,
    );
    expect(refused.details).not.toContain('emulated device');
    expect(refused.details).not.toContain('a larger --host-maxbytes');
    expect(refused.errorMetadata).toMatchObject({ cap_bytes: String(256 * MiB), refused_by: 'backend' });
    // Nothing was taken, and an array that /dev/shm is not needed for is served.
    const info = await running.client.memoryInfo();
    expect(info.host?.used_bytes).toBe(0);
    const plain = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [4 * MiB], placement: 'PLACEMENT_HOST_ONLY' });
    expect(plain.byte_size).toBe(4 * MiB);
    await lease.close();
  });
});
