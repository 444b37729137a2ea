/**
 * The typed client refuses an enum name its proto does not have before sending anything: protobufjs
 * would send the enum's 0 value instead, so the daemon's refusal named a value the caller never sent
 * (or, for a workspace policy, the default was taken without a word).
 */
import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { type AllocateOptions, type WorkspaceConfig } from '../../src/client/tensormem-client';
import { daemonForTests } from '../helpers/daemon-for-tests';
import { failure } from '../helpers/thrown';

describe('typed client: unknown enum names', () => {
  const setup = daemonForTests([]);

  it('refuses them with INVALID_ARGUMENT naming the field and the value given, and sends nothing', async () => {
    const lease = await setup.client.openLease({ clientName: 'enum-names', ttlSeconds: 60 });
    try {
      // What a plain-JS caller writes: the short name.
      const error = await failure(lease.allocate({ shape: [4], dataType: 'FLOAT32' } as unknown as AllocateOptions));
      expect(error.code).toBe(status.INVALID_ARGUMENT);
      expect(error.reason).toBe('INVALID_ARGUMENT');
      expect(error.errorMetadata).toEqual({ field: 'data_type' });
      expect(error.message).toContain('for data_type but received "FLOAT32"');
      expect(error.message).toContain('one of DATA_TYPE_FLOAT16, DATA_TYPE_BFLOAT16, DATA_TYPE_FLOAT32');
      // A nested message's field: its path; the daemon would have taken the default policy.
      const workspaceError = await failure(lease.createWorkspace('ws', { initial_size: 1024, spill_policy: 'EXTERNAL' } as unknown as WorkspaceConfig));
      expect(workspaceError.errorMetadata).toEqual({ field: 'config.spill_policy' });
      expect(workspaceError.message).toContain('received "EXTERNAL"');
      expect(await lease.list()).toEqual([]);
      expect(await lease.listWorkspaces()).toEqual([]);
      // The proto's names and numbers go through.
      expect((await lease.allocate({ shape: [4], dataType: 'DATA_TYPE_FLOAT32' })).byte_size).toBe(16);
      expect((await lease.allocate({ shape: [4], dataType: 1 as unknown as AllocateOptions['dataType'] })).data_type).toBe('DATA_TYPE_FLOAT16');
      expect((await lease.createWorkspace('ws', { initial_size: 1024, spill_policy: 'SPILL_POLICY_FAIL' } as WorkspaceConfig)).name).toBe('ws');
    } finally {
      await lease.close();
    }
  });
});
