/**
 * Host mirrors of device arrays over a real daemon (host backend), where the README's "Host mirrors"
 * rule is checked end to end: a read of a device array that host memory cannot take a mirror for is
 * refused saying so (ErrorInfo `mirror_of`), nothing half-made, the device bytes intact. The case here
 * is an array attached to a FULL workspace, whose mirror is taken from the workspace's host side.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MiB } from '../../src/units';
import { daemonForTests } from '../helpers/daemon-for-tests';
import { failure } from '../helpers/thrown';

describe('host mirrors over a real daemon', () => {
  const setup = daemonForTests(['--maxbytes', '64M', '--host-maxbytes', '24M', '--pool-chunk', '2M', '--data-listen', '127.0.0.1:0']);

  it("refuses the read of a FULL workspace's array with no host memory for its mirror saying so (mirror_of), nothing half-made, the device bytes intact", async () => {
    const lease = await setup.client.openLease({ clientName: 'attached-mirror-refused' });
    const filler = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [20 * MiB], placement: 'PLACEMENT_HOST_ONLY' });
    const workspace = await lease.createWorkspace('mirror-refused', { initial_size: 8 * MiB });
    await lease.enterWorkspace(workspace.workspace_id);
    const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [4 * MiB], workspaceId: workspace.workspace_id });
    expect(array.attached).toBe(true);
    const data = randomBytes(4 * MiB);
    await lease.write(array.array_id, data);
    const before = await setup.client.memoryInfo();

    for (const [call, attempt] of [
      ['ReadArray', () => lease.readGrpc(array.array_id)],
      ['data plane GET', () => lease.read(array.array_id, 0, 2 * MiB)],
      ['SyncArray(TO_HOST)', () => lease.sync(array.array_id, 'SYNC_DIRECTION_TO_HOST')],
    ] as const) {
      const error = await failure(attempt());
      expect(error.reason, call).toBe('HOST_OUT_OF_MEMORY');
      // The caller asked for a 4 MiB array's bytes and was refused some 10 MiB: the refusal says what they are.
      expect(error.errorMetadata.mirror_of, call).toBe(array.array_id);
      expect(error.details, call).toContain(`host mirror of device array ${array.array_id}`);
      expect(error.details, call).toContain('workspace "mirror-refused"');
    }

    // Nothing half-made: no mirror, the workspace's host side untouched, no host byte taken.
    const info = await lease.get(array.array_id);
    expect([info.has_host_mirror, info.host_valid, info.device_valid]).toEqual([false, false, true]);
    expect((await lease.getWorkspace(workspace.workspace_id)).host_offset).toBe(0);
    expect((await setup.client.memoryInfo()).host!.used_bytes).toBe(before.host!.used_bytes);

    // The device bytes are intact: once host memory is free, the read gets them.
    await lease.free(filler.array_id);
    expect((await lease.readGrpc(array.array_id)).equals(data)).toBe(true);
    expect((await lease.get(array.array_id)).host_valid).toBe(true);
    await lease.close();
    expect((await setup.client.memoryInfo()).host!.used_bytes).toBe(0);
  });
});
