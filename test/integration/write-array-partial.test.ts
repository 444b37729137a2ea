/**
 * DESIGN.md §5 says bad input "changes nothing"; a WriteArray stream refused at a later chunk keeps the
 * chunks before it (README, "Differences from ND4J, on purpose"). This pins what does hold: the failing
 * chunk writes nothing, no byte outside the earlier chunks' range changes, and nothing is counted.
 */
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LeaseSession, TensormemClient } from '../../src/client/tensormem-client';
import { DaemonProcess, startDaemon } from '../helpers/daemon-process';

describe('WriteArray refused at a later chunk', () => {
  let daemon: DaemonProcess;
  let client: TensormemClient;
  let lease: LeaseSession;

  beforeAll(async () => {
    daemon = await startDaemon(['--maxbytes', '64M', '--host-maxbytes', '64M']);
    client = new TensormemClient(daemon.tcpAddress);
    lease = await client.openLease();
  });

  afterAll(async () => {
    client?.close();
    expect(await daemon?.stop()).toBe(0);
  });

  it('keeps the earlier chunks, writes none of the failing one, and counts nothing', async () => {
    const arrayId = (await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [16] })).array_id;
    await lease.write(arrayId, Buffer.alloc(16, 1));
    const before = await client.memoryInfo();
    const failure = await new Promise<{ code: number; details: string; response?: unknown }>((resolve) => {
      const stream = client.arrays.WriteArray(client.metadata(lease.token), (e, response) =>
        resolve(e ? (e as unknown as { code: number; details: string }) : { code: status.OK, details: '', response }),
      );
      stream.write({ header: { array_id: arrayId, offset: 8 } } as never);
      stream.write({ chunk: Buffer.alloc(4, 9) });
      stream.write({ chunk: Buffer.alloc(6, 7) });
      stream.end();
    });
    expect(failure.code).toBe(status.OUT_OF_RANGE);
    expect(failure.details).toContain('6 bytes at offset 12');
    expect(failure.response).toBeUndefined();
    const after = await client.memoryInfo();
    expect(after.devices[0].used_bytes).toBe(before.devices[0].used_bytes);
    expect(after.host!.used_bytes).toBe(before.host!.used_bytes);
    expect([...(await lease.read(arrayId))]).toEqual([1, 1, 1, 1, 1, 1, 1, 1, 9, 9, 9, 9, 1, 1, 1, 1]);
    await lease.free(arrayId);
  });
});
