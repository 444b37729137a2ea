/**
 * What a SIGKILLed daemon leaves in --mmap-dir. A temporary MMAP workspace file (no temp_file_path) is
 * unlinked as soon as it is mapped, but between its creation and that unlink (the posix_fallocate of its
 * whole length: 27 ms for 8 GiB on ext4, far longer where glibc has to write every block) a SIGKILL
 * left the file, its whole length allocated on disk, and no later daemon removed it: an 8 GiB
 * tensormem-ws-….mmap stayed in --mmap-dir after a restart. A starting daemon removes such files; the
 * tenants' own files (temp_file_path) and anything else stay.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, describe, expect, it } from 'vitest';
import { TensormemClient, TensormemClientError } from '../../src/client/tensormem-client';
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

  it('a daemon beside a live one on the same --mmap-dir cannot re-create a tenant file the live one maps, and can once it is unmapped', async () => {
    // Two daemons in open mode share the tenant folder tenant-default/ (the default --mmap-dir is one
    // folder for every daemon of the host). A larger initial_size re-creates an existing file (truncated
    // to 0, then its new length): the second daemon did that under the first's live mapping, whose
    // arrays then read zeros (and any touch between the two truncates was a SIGBUS, killing the first).
    const name = `shared-${randomBytes(4).toString('hex')}.bin`;
    const file = join(mmapDir, 'tenant-default', name);
    const first = await startDaemon(['--mmap-dir', mmapDir]);
    const second = await startDaemon(['--mmap-dir', mmapDir]);
    const firstClient = new TensormemClient(first.tcpAddress);
    const secondClient = new TensormemClient(second.tcpAddress);
    try {
      const lease = await firstClient.openLease({ clientName: 'mmap-owner' });
      const workspace = await lease.createWorkspace('owner', { ...temporaryWorkspace, initial_size: 4 * MiB, temp_file_path: name });
      await lease.enterWorkspace(workspace.workspace_id);
      const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [3 * MiB], workspaceId: workspace.workspace_id });
      await lease.write(array.array_id, Buffer.alloc(3 * MiB, 0x5a));

      const other = await secondClient.openLease({ clientName: 'mmap-neighbour' });
      const refused = await other.createWorkspace('grow', { ...temporaryWorkspace, initial_size: 8 * MiB, temp_file_path: name }).then(
        () => undefined,
        (error: TensormemClientError) => error,
      );
      expect(refused?.code).toBe(status.FAILED_PRECONDITION);
      expect(refused?.details).toContain(file);
      expect(refused?.details).toContain('another process maps it');
      expect(statSync(file).size).toBe(4 * MiB);
      expect((await lease.read(array.array_id)).equals(Buffer.alloc(3 * MiB, 0x5a))).toBe(true);
      // Mapping it as it is shares it, as before.
      const shared = await other.createWorkspace('share', { ...temporaryWorkspace, initial_size: 4 * MiB, temp_file_path: name });
      await other.destroyWorkspace(shared.workspace_id);

      // Once no process maps it, the second daemon re-creates it.
      await lease.leaveWorkspace(workspace.workspace_id);
      await lease.destroyWorkspace(workspace.workspace_id);
      // A process holding the file's flock exclusively (as a daemon re-creating it does) keeps it from
      // being mapped meanwhile; released, it maps. (--close: the lock is flock's own, not its child's.)
      // flock waits for the lock and says when it holds it: polling beside a --nonblock flock raced it,
      // since each poll's mapping takes the shared lock for a moment and flock then gave up.
      const holder = spawn('flock', ['--exclusive', '--close', file, 'sh', '-c', 'echo locked; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'], detached: true });
      const closed = once(holder, 'close');
      try {
        await new Promise<void>((resolve, reject) => {
          holder.stdout!.on('data', (data: Buffer) => { if (data.toString().includes('locked')) resolve(); });
          holder.once('exit', (code) => reject(new Error(`flock exited ${code} before it held the lock`)));
        });
        const locked = await other.createWorkspace('locked', { ...temporaryWorkspace, initial_size: 0, temp_file_path: name }).then(
          () => undefined,
          (error: TensormemClientError) => error,
        );
        expect(locked?.code).toBe(status.FAILED_PRECONDITION);
        expect(locked?.details).toContain('another process holds an exclusive flock on it');
      } finally {
        // flock and its sleep, which holds the stdout pipe open; a flock gone already (ESRCH) keeps its own error.
        try {
          process.kill(-holder.pid!, 'SIGKILL');
        } catch {}
        await closed;
      }
      const unlocked = await other.createWorkspace('unlocked', { ...temporaryWorkspace, initial_size: 0, temp_file_path: name });
      await other.destroyWorkspace(unlocked.workspace_id);

      await other.createWorkspace('grow', { ...temporaryWorkspace, initial_size: 8 * MiB, temp_file_path: name });
      expect(statSync(file).size).toBe(8 * MiB);
      await other.close();
      await lease.close();
    } finally {
      firstClient.close();
      secondClient.close();
      expect(await second.stop()).toBe(0);
      expect(await first.stop()).toBe(0);
    }
  }, 60_000);
});
