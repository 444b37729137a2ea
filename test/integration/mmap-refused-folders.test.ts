/**
 * An MMAP workspace refused for its file (no length given for a new file, --mmap-maxbytes) leaves no
 * folder of its temp_file_path behind in --mmap-dir: a tenant retrying refused paths made one empty
 * folder chain each, without end.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, describe, expect, it } from 'vitest';
import { TensormemClient, TensormemClientError } from '../../src/client/tensormem-client';
import { daemonForTests } from '../helpers/daemon-for-tests';
import { TENSORMEMD, runTensormemd, startDaemon } from '../helpers/daemon-process';
import { tinyFilesystemPrefix, tinyFilesystemUnavailable } from '../helpers/tiny-filesystem';

const mmapDir = mkdtempSync(join(tmpdir(), 'tensormem-mmap-refused-'));
afterAll(() => rmSync(mmapDir, { recursive: true, force: true }));

describe('refused MMAP workspaces', () => {
  const setup = daemonForTests(['--mmap-dir', mmapDir, '--mmap-maxbytes', '1M']);
  const mmap = (temp_file_path: string, initial_size: number) => ({ initial_size, location_policy: 'LOCATION_POLICY_MMAP' as const, learning_policy: 'LEARNING_POLICY_NONE' as const, temp_file_path });
  const refusal = (promise: Promise<unknown>) => promise.then(() => undefined, (error: TensormemClientError) => error.code);

  it('leave no folder behind, and keep the folders of files that exist', async () => {
    const lease = await setup.client.openLease({ clientName: 'mmap-refused', ttlSeconds: 60 });
    try {
      // A new file with no length: INVALID_ARGUMENT, after the daemon looked for the file.
      expect(await refusal(lease.createWorkspace('NO_LENGTH', mmap('a/b/c/new.mmap', 0)))).toBe(status.INVALID_ARGUMENT);
      // Over --mmap-maxbytes: refused when mapping, after the folders were made for the file.
      expect(await refusal(lease.createWorkspace('TOO_BIG', mmap('d/e/big.mmap', 4 * 1024 * 1024)))).toBe(status.RESOURCE_EXHAUSTED);
      expect(existsSync(join(mmapDir, 'tenant-default', 'a'))).toBe(false);
      expect(existsSync(join(mmapDir, 'tenant-default', 'd'))).toBe(false);

      // Beside a mapped file, a refused one takes only its own empty folders.
      const kept = await lease.createWorkspace('KEPT', mmap('d/kept.mmap', 16 * 1024));
      expect(await refusal(lease.createWorkspace('TOO_BIG_2', mmap('d/e/big.mmap', 4 * 1024 * 1024)))).toBe(status.RESOURCE_EXHAUSTED);
      expect(readdirSync(join(mmapDir, 'tenant-default', 'd'))).toEqual(['kept.mmap']);
      await lease.destroyWorkspace(kept.workspace_id);
    } finally {
      await lease.close();
    }
  });
});

describe('an --mmap-dir that cannot hold MMAP workspace files', () => {
  it('is refused at start when given: a regular file, or a folder others may write', async () => {
    const file = join(mmapDir, 'a-file');
    writeFileSync(file, 'not a folder');
    const asFile = await runTensormemd(['--backend', 'host', '--listen', '127.0.0.1:0', '--data-listen', 'off', '--metrics-listen', 'off', '--mmap-dir', file]);
    expect(asFile.code).toBe(1);
    expect(asFile.stderr).toContain(`--mmap-dir ${file} is not a folder`);
    const open = join(mmapDir, 'open-to-all');
    mkdirSync(open);
    chmodSync(open, 0o777);
    const shared = await runTensormemd(['--backend', 'host', '--listen', '127.0.0.1:0', '--data-listen', 'off', '--metrics-listen', 'off', '--mmap-dir', open]);
    expect(shared.code).toBe(1);
    expect(shared.stderr).toContain(`--mmap-dir ${open} may be written by group or others (mode 777)`);
  });

  it('is refused at start, not hung on, where mkdir answers ENOENT under a folder that exists (procfs)', () => {
    // Node's recursive mkdir retried /proc/… for ever in one synchronous call: the daemon spun at full
    // CPU before its first log line, and SIGTERM could not stop it. A hang here ends at the 15 s kill.
    const inProc = `/proc/tensormem-test-${process.pid}/mmap`;
    const started = Date.now();
    const run = spawnSync(process.execPath, [TENSORMEMD, '--backend', 'host', '--listen', '127.0.0.1:0', '--data-listen', 'off', '--metrics-listen', 'off', '--mmap-dir', inProc], { encoding: 'utf8', timeout: 15_000, killSignal: 'SIGKILL' });
    expect(run.signal, `still running after ${Date.now() - started} ms`).toBeNull();
    expect(run.status).toBe(1);
    expect(run.stderr).toContain(`--mmap-dir ${inProc} cannot be made (ENOENT: no such file or directory, mkdir '/proc/tensormem-test-${process.pid}')`);
  });

  it('is warned about inside a folder others may write without the sticky bit (another user could swap it), and not inside a sticky one', async () => {
    const open = join(mmapDir, 'open-parent');
    mkdirSync(open);
    chmodSync(open, 0o777);
    const inOpen = join(open, 'mmap');
    const warned = await startDaemon(['--mmap-dir', inOpen]);
    const warning = warned.logs.find((entry) => entry.event === 'mmap_dir_swappable');
    expect(warning?.msg).toContain(`--mmap-dir ${inOpen} lies in ${open} (mode 777: group or others may write it, and it has no sticky bit)`);
    expect(await warned.stop()).toBe(0);
    // With the sticky bit (as /tmp has), only an entry's owner may rename it.
    chmodSync(open, 0o1777);
    const quiet = await startDaemon(['--mmap-dir', inOpen]);
    expect(quiet.logs.filter((entry) => String(entry.event).startsWith('mmap_dir'))).toEqual([]);
    expect(await quiet.stop()).toBe(0);
  });

  // A read-only file system (a volume mounted ro, a disk the kernel remounted ro after errors): the daemon
  // started, and every MMAP workspace was refused later, one saying EROFS, one with tenant_folder's mkdir ENOENT.
  const readOnlyDir = join(mmapDir, 'read-only');
  mkdirSync(readOnlyDir);
  const noTinyFilesystem = tinyFilesystemUnavailable(readOnlyDir);
  it.skipIf(noTinyFilesystem !== undefined)(`is refused at start when given on a read-only file system${noTinyFilesystem ? ` — skipped: ${noTinyFilesystem}` : ''}`, async () => {
    const started = startDaemon(['--mmap-dir', readOnlyDir], {}, tinyFilesystemPrefix(readOnlyDir, '1m', '0700', true));
    const refused = await started.then(
      async (daemon) => {
        await daemon.stop();
        return 'started';
      },
      (error: Error) => error.message,
    );
    expect(refused).toMatch(/^tensormemd exited with 1 before listening/);
    expect(refused).toContain(`--mmap-dir ${readOnlyDir} cannot be written (EROFS: read-only file system`);
  });

  it('is warned about when it is the default (in the shared temporary folder, where anyone may make it first), and the daemon serves', async () => {
    const temporary = mkdtempSync(join(tmpdir(), 'tensormem-tmpdir-'));
    try {
      const squatted = join(temporary, 'tensormem-mmap');
      mkdirSync(squatted);
      chmodSync(squatted, 0o777);
      const daemon = await startDaemon([], { TMPDIR: temporary });
      try {
        const warning = daemon.logs.find((entry) => entry.event === 'mmap_dir_unusable');
        expect(warning?.msg).toContain(`--mmap-dir ${squatted} may be written by group or others`);
        const client = new TensormemClient(daemon.tcpAddress);
        try {
          const lease = await client.openLease({ clientName: 'mmap-default-squatted' });
          expect(Number((await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [16] })).byte_size)).toBe(16);
          const refused = await lease.createWorkspace('MMAP', { initial_size: 16384, location_policy: 'LOCATION_POLICY_MMAP', learning_policy: 'LEARNING_POLICY_NONE' }).then(
            () => undefined,
            (error: TensormemClientError) => error,
          );
          expect(refused?.code).toBe(status.FAILED_PRECONDITION);
          await lease.close();
        } finally {
          client.close();
        }
      } finally {
        expect(await daemon.stop()).toBe(0);
      }
    } finally {
      rmSync(temporary, { recursive: true, force: true });
    }
  });
});
