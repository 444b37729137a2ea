/**
 * An MMAP workspace whose file the file system of --mmap-dir has no room for: RESOURCE_EXHAUSTED, reason
 * MMAP_LIMIT, as gRPC names an out-of-space file system (it was FAILED_PRECONDITION, which tells a client
 * that retrying after a change of state is pointless, when destroying workspaces makes room), with
 * nothing left behind; a workspace that fits is made.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TensormemClient } from '../../src/client/tensormem-client';
import { DaemonProcess, startDaemon } from '../helpers/daemon-process';
import { failure } from '../helpers/thrown';
import { tinyFilesystemPrefix, tinyFilesystemUnavailable } from '../helpers/tiny-filesystem';

const MiB = 1024 * 1024;
const mmapDir = mkdtempSync(join(tmpdir(), 'tensormem-mmap-full-'));
const skipReason = tinyFilesystemUnavailable(mmapDir);

describe.skipIf(skipReason !== undefined)(`an MMAP workspace on a full disk${skipReason ? ` — skipped: ${skipReason}` : ''}`, () => {
  let daemon: DaemonProcess;
  let client: TensormemClient;

  beforeAll(async () => {
    // The daemon alone sees a 1 MiB tmpfs over --mmap-dir.
    daemon = await startDaemon(['--mmap-dir', mmapDir], {}, tinyFilesystemPrefix(mmapDir, '1m'));
    client = new TensormemClient(daemon.tcpAddress);
  });

  afterAll(async () => {
    client?.close();
    expect(await daemon?.stop()).toBe(0);
    rmSync(mmapDir, { recursive: true, force: true });
  });

  it('is RESOURCE_EXHAUSTED / MMAP_LIMIT naming the disk, leaves no file, and one that fits is made', async () => {
    const lease = await client.openLease({ clientName: 'mmap-disk-full' });
    const mmap = (initial_size: number, temp_file_path?: string) => ({ initial_size, location_policy: 'LOCATION_POLICY_MMAP' as const, learning_policy: 'LEARNING_POLICY_NONE' as const, temp_file_path });
    for (const path of ['big.bin', undefined]) {
      const refused = await failure(lease.createWorkspace(`big-${path ?? 'temporary'}`, mmap(8 * MiB, path)));
      expect([refused.code, refused.reason], refused.message).toEqual([status.RESOURCE_EXHAUSTED, 'MMAP_LIMIT']);
      // Told from the file system's free room before the file is made, with both numbers.
      expect(refused.details).toMatch(/initial_size 8388608 bytes \(8\.00 MiB\) is more than the file system of --mmap-dir has room for \(\d+ bytes( \([\d.]+ [KM]iB\))? free\)/);
      expect(refused.details).toContain('Try: destroy MMAP workspaces');
      expect(refused.errorMetadata).toMatchObject({ requested_bytes: String(8 * MiB) });
      expect(Number(refused.errorMetadata.free_bytes)).toBeLessThanOrEqual(MiB);
    }
    expect((await client.memoryInfo()).host!.mmap_bytes).toBe(0);
    expect(await lease.listWorkspaces()).toEqual([]);
    const small = await lease.createWorkspace('small', mmap(256 * 1024, 'small.bin'));
    expect(small.workspace_id).toBeTruthy();
    expect((await client.memoryInfo()).host!.mmap_bytes).toBe(256 * 1024);
    await lease.close();
    // The tmpfs was the daemon's own: here the folder holds nothing of it.
    expect(existsSync(mmapDir) ? readdirSync(mmapDir) : []).toEqual([]);
  });
});
