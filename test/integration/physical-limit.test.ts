/** --maxphysicalbytes: the daemon's resident set plus a request that takes host RAM never passes the cap. */
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TensormemClient, TensormemClientError } from '../../src/client/tensormem-client';
import { DaemonProcess, startDaemon } from '../helpers/daemon-process';

const MiB = 1024 * 1024;

describe('--maxphysicalbytes', () => {
  let daemon: DaemonProcess;
  let client: TensormemClient;

  beforeAll(async () => {
    // The daemon starts near 70 MiB resident; 200 MiB leaves room for small chunks only.
    daemon = await startDaemon(['--maxphysicalbytes', '200M', '--pool-chunk', '4M']);
    client = new TensormemClient(daemon.tcpAddress);
  });

  afterAll(async () => {
    client?.close();
    expect(await daemon?.stop()).toBe(0);
  });

  for (const placement of ['PLACEMENT_HOST_ONLY', 'PLACEMENT_DEVICE'] as const) {
    it(`refuses a ${placement} array that would take the resident set past the cap, and nothing changes`, async () => {
      const lease = await client.openLease();
      const small = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [MiB], placement });
      const before = await client.memoryInfo();
      const error = (await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [256 * MiB], placement }).catch((e: unknown) => e)) as TensormemClientError;
      expect(error).toBeInstanceOf(TensormemClientError);
      expect(error.code).toBe(status.RESOURCE_EXHAUSTED);
      expect(error.reason).toBe('PHYSICAL_MEMORY_LIMIT');
      expect(error.details).toMatch(/^Physical memory usage is too high: physicalBytes \d+ bytes \([\d.]+ MiB\) \+ request \d+ bytes \([\d.]+ MiB\) > maxPhysicalBytes 209715200 bytes \(200.00 MiB\)/);
      expect(Number(error.errorMetadata.max_physical_bytes)).toBe(200 * MiB);
      const after = await client.memoryInfo();
      expect(after.devices[0].used_bytes).toBe(before.devices[0].used_bytes);
      expect(after.host!.used_bytes).toBe(before.host!.used_bytes);
      // No chunk was taken; under pressure the relief step may give fully free chunks back.
      expect(after.devices[0].reserved_bytes).toBeLessThanOrEqual(before.devices[0].reserved_bytes);
      expect(after.host!.reserved_bytes).toBeLessThanOrEqual(before.host!.reserved_bytes);
      expect(after.devices[0].reserved_bytes).toBeGreaterThanOrEqual(after.devices[0].used_bytes);
      expect(after.process!.max_physical_bytes).toBe(200 * MiB);
      await lease.free(small.array_id);
      await lease.close();
    });
  }
});
