/**
 * tensormemctl put renews the lease it opened once every byte is written (the keep-alive's last message
 * does not renew). When that renewal fails, what happens to the array depends on why: a lease that has
 * ended took the array with it and put fails; any other failure (a deadline, a connection blip) leaves
 * the lease as its last keep-alive renewal left it, so put keeps the array and says until when it lives.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { putFile } from '../../src/cli/transfer';
import { LeaseSession, TensormemClientError } from '../../src/client/tensormem-client';
import { daemonForTests } from '../helpers/daemon-for-tests';

describe("put's renewal once every byte is written", () => {
  const setup = daemonForTests(['--maxbytes', '64M', '--host-maxbytes', '64M']);
  let dir: string;
  afterEach(() => {
    vi.restoreAllMocks();
    rmSync(dir, { recursive: true, force: true });
  });

  function fileOf(bytes: number): string {
    dir = mkdtempSync(join(tmpdir(), 'tensormem-put-renew-'));
    const file = join(dir, 'data.bin');
    writeFileSync(file, Buffer.alloc(bytes, 0x5a));
    return file;
  }

  it('failing for a reason other than the lease ending, keeps the array and says until when the lease holds it', async () => {
    const file = fileOf(4096);
    vi.spyOn(LeaseSession.prototype, 'renew').mockRejectedValueOnce(new TensormemClientError(status.DEADLINE_EXCEEDED, undefined, 'Deadline exceeded', {}));
    const result = await putFile(setup.client, file, { dtype: 'uint8', placement: 'PLACEMENT_HOST_ONLY', ttlSeconds: 60 });
    expect(result.bytes_written).toBe(4096);
    expect(result.lease?.renew_error).toBe('DEADLINE_EXCEEDED: Deadline exceeded');
    // The expiry the lease had from its opening or its last keep-alive renewal: about 60 s from now.
    const expiresInMs = Date.parse(result.lease!.expires_at!) - Date.now();
    expect(expiresInMs).toBeGreaterThan(50_000);
    expect(expiresInMs).toBeLessThanOrEqual(60_000);
    // The lease and its array are still there, with the bytes.
    const session = setup.client.sessionOf(result.lease!.token);
    expect((await session.read(result.array.array_id, 0, 4096)).equals(Buffer.alloc(4096, 0x5a))).toBe(true);
    await session.close();
  });

  it('failing because the lease ended, fails put naming the lease, and holds nothing', async () => {
    const file = fileOf(4096);
    const before = await setup.client.memoryInfo();
    vi.spyOn(LeaseSession.prototype, 'renew').mockImplementationOnce(async function (this: LeaseSession) {
      await this.close();
      throw new TensormemClientError(status.FAILED_PRECONDITION, 'LEASE_EXPIRED', `lease ${this.leaseId} has ended`, {});
    });
    const failure = await putFile(setup.client, file, { dtype: 'uint8', placement: 'PLACEMENT_HOST_ONLY', ttlSeconds: 60 }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(failure?.message).toMatch(/^FAILED_PRECONDITION \(LEASE_EXPIRED\): lease \S+ has ended; lease \S+, which put opened, had already ended, and its array with it$/);
    const after = await setup.client.memoryInfo();
    expect(after.host?.used_bytes ?? 0).toBe(before.host?.used_bytes ?? 0);
  });
});
