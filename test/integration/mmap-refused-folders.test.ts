/**
 * An MMAP workspace refused for its file (no length given for a new file, --mmap-maxbytes) leaves no
 * folder of its temp_file_path behind in --mmap-dir: a tenant retrying refused paths made one empty
 * folder chain each, without end.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, describe, expect, it } from 'vitest';
import { TensormemClientError } from '../../src/client/tensormem-client';
import { daemonForTests } from '../helpers/daemon-for-tests';

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
