/**
 * --pool-idle-release: the chunks a burst took go back to the backend once no live block has used
 * them for that long, while chunks with live blocks stay; "off" keeps them until shutdown.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { TensormemClient } from '../../src/client/tensormem-client';
import { DaemonProcess, startDaemon } from '../helpers/daemon-process';

const MiB = 1024 * 1024;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('--pool-idle-release', () => {
  let daemon: DaemonProcess | undefined;
  let client: TensormemClient | undefined;
  afterEach(async () => {
    client?.close();
    expect(await daemon?.stop()).toBe(0);
  });

  async function reserved(): Promise<{ device: number; host: number }> {
    const info = await client!.memoryInfo();
    return { device: Number(info.devices[0].reserved_bytes), host: Number(info.host!.reserved_bytes) };
  }

  /** Two 8 MiB device arrays and one HOST_ONLY array, each in a chunk of its own (--pool-chunk 8M); frees the first device array and the host one. */
  async function burst() {
    const lease = await client!.openLease({});
    const freed = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [8 * MiB] });
    const kept = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [8 * MiB] });
    const host = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [8 * MiB], placement: 'PLACEMENT_HOST_ONLY' });
    await lease.write(kept.array_id, Buffer.alloc(8 * MiB, 3));
    expect(await reserved()).toEqual({ device: 16 * MiB, host: 8 * MiB });
    await lease.free(freed.array_id);
    await lease.free(host.array_id);
    return { lease, kept };
  }

  it('gives back the chunks unused for the idle time and keeps the one with a live array', async () => {
    daemon = await startDaemon(['--pool-chunk', '8M', '--pool-idle-release', '1s']);
    client = new TensormemClient(daemon.tcpAddress);
    const { lease, kept } = await burst();
    const freedAt = Date.now();
    let now = await reserved();
    while (now.device !== 8 * MiB || now.host !== 0) {
      expect(Date.now() - freedAt).toBeLessThan(10_000);
      await sleep(100);
      now = await reserved();
    }
    // Not before the idle time (1 s), and the checks run every 0.5 s.
    expect(Date.now() - freedAt).toBeGreaterThanOrEqual(900);
    const released = daemon.logs.filter((entry) => entry.event === 'idle_chunks_released');
    expect(released.reduce((sum, entry) => sum + ((entry.released as Record<string, number>)['device:0'] ?? 0), 0)).toBe(8 * MiB);
    expect(released.reduce((sum, entry) => sum + ((entry.released as Record<string, number>).host ?? 0), 0)).toBe(8 * MiB);
    // The live array's chunk and bytes are untouched, and the pool grows again on demand.
    expect((await lease.read(kept.array_id)).equals(Buffer.alloc(8 * MiB, 3))).toBe(true);
    const again = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [8 * MiB] });
    // (The read gave the kept array its host mirror: a host chunk again.)
    expect(await reserved()).toEqual({ device: 16 * MiB, host: 8 * MiB });
    await lease.free(again.array_id);
    await lease.close();
  });

  it('keeps free chunks with "off"', async () => {
    daemon = await startDaemon(['--pool-chunk', '8M', '--pool-idle-release', 'off']);
    client = new TensormemClient(daemon.tcpAddress);
    const { lease } = await burst();
    await sleep(1500);
    expect(await reserved()).toEqual({ device: 16 * MiB, host: 8 * MiB });
    expect(daemon.logs.some((entry) => entry.event === 'idle_chunks_released')).toBe(false);
    await lease.close();
  });
});
