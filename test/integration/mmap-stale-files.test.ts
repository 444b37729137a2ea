/**
 * What a SIGKILLed daemon leaves in --mmap-dir. A temporary MMAP workspace file (no temp_file_path) is
 * unlinked as soon as it is mapped, but between its creation and that unlink (the posix_fallocate of its
 * whole length: 27 ms for 8 GiB on ext4, far longer where glibc has to write every block) a SIGKILL
 * left the file, its whole length allocated on disk, and no later daemon removed it: an 8 GiB
 * tensormem-ws-….mmap stayed in --mmap-dir after a restart. A starting daemon removes such files; the
 * tenants' own files (temp_file_path) and anything else stay.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TensormemClient } from '../../src/client/tensormem-client';
import { startDaemon } from '../helpers/daemon-process';

const MiB = 1024 * 1024;
const mmapDir = mkdtempSync(join(tmpdir(), 'tensormem-mmap-stale-'));
const outside = mkdtempSync(join(tmpdir(), 'tensormem-mmap-stale-outside-'));
afterAll(() => {
  rmSync(mmapDir, { recursive: true, force: true });
  rmSync(outside, { recursive: true, force: true });
});

/** A temporary workspace file's name, as the daemon makes them (mmap-files.ts temporaryPath). */
const temporaryName = () => `tensormem-ws-${randomBytes(12).toString('hex')}.mmap`;
const temporaryWorkspace = { initial_size: MiB, location_policy: 'LOCATION_POLICY_MMAP' as const, learning_policy: 'LEARNING_POLICY_NONE' as const };

describe('--mmap-dir after a daemon was SIGKILLed', () => {
  it('a starting daemon removes the temporary workspace files a dead daemon left, logs them, and keeps every other file', async () => {
    // As a daemon killed between creating and unlinking two temporary files leaves them.
    const stale = [temporaryName(), temporaryName()];
    for (const name of stale) writeFileSync(join(mmapDir, name), Buffer.alloc(MiB));
    // Not the daemon's temporary files: a tenant's own file, other names, a link named like one.
    mkdirSync(join(mmapDir, 'tenant-default'), { mode: 0o700 });
    const tenantFile = join(mmapDir, 'tenant-default', temporaryName());
    writeFileSync(tenantFile, Buffer.alloc(4096));
    const others = ['tensormem-ws-notours.mmap', `${temporaryName()}.bak`, 'weights.bin'];
    for (const name of others) writeFileSync(join(mmapDir, name), 'keep');
    const target = join(outside, 'target');
    writeFileSync(target, 'keep');
    const link = temporaryName();
    symlinkSync(target, join(mmapDir, link));

    const daemon = await startDaemon(['--mmap-dir', mmapDir]);
    const client = new TensormemClient(daemon.tcpAddress);
    try {
      for (const name of stale) expect(existsSync(join(mmapDir, name)), name).toBe(false);
      expect(existsSync(tenantFile)).toBe(true);
      expect(existsSync(target)).toBe(true);
      expect(readdirSync(mmapDir).sort()).toEqual([...others, link, 'tenant-default'].sort());
      const line = daemon.logs.find((entry) => entry.event === 'stale_mmap_removed') as { count: number; bytes: number; names: string[]; msg: string } | undefined;
      expect(line, 'no stale_mmap_removed log line').toBeDefined();
      expect(line).toMatchObject({ count: 2, bytes: 2 * MiB });
      expect(line!.names.sort()).toEqual(stale.map((name) => join(mmapDir, name)).sort());
      expect(line!.msg).toBe(`removed 2 temporary MMAP workspace files (2.00 MiB) from --mmap-dir ${mmapDir} left by daemons that died`);

      // The daemon's own temporary workspace files come and go as before.
      const lease = await client.openLease({ clientName: 'mmap-stale' });
      await lease.createWorkspace('temporary', temporaryWorkspace);
      expect((await client.memoryInfo()).host!.mmap_bytes).toBe(MiB);
      await lease.close();
      expect((await client.memoryInfo()).host!.mmap_bytes).toBe(0);
    } finally {
      client.close();
      expect(await daemon.stop()).toBe(0);
    }
  }, 60_000);

  it('a daemon started beside a live one on the same --mmap-dir leaves the live one\'s workspace working', async () => {
    const first = await startDaemon(['--mmap-dir', mmapDir]);
    const client = new TensormemClient(first.tcpAddress);
    try {
      const lease = await client.openLease({ clientName: 'mmap-live' });
      const workspace = await lease.createWorkspace('temporary', temporaryWorkspace);
      const second = await startDaemon(['--mmap-dir', mmapDir]);
      expect(await second.stop()).toBe(0);
      expect((await client.memoryInfo()).host!.mmap_bytes).toBe(MiB);
      await lease.destroyWorkspace(workspace.workspace_id);
      await lease.close();
    } finally {
      client.close();
      expect(await first.stop()).toBe(0);
    }
  }, 60_000);
});
