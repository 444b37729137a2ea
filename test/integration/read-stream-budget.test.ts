/**
 * One tenant's ReadArray streams cannot take the daemon's resident set from the others. A stream's
 * messages stay in the daemon while its client reads nothing (a hung or malicious reader), and nothing
 * bounded how many streams a tenant opens: 40 streams of a stopped reader over one 16 MiB array, well
 * within the tenant's quota, held 640 MiB, and every other tenant's allocations were refused with
 * PHYSICAL_MEMORY_LIMIT. A tenant's streams now share a budget of chunk rings; the ones beyond it wait
 * their turn, holding nothing.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TensormemClient } from '../../src/client/tensormem-client';
import { DaemonProcess, startDaemon } from '../helpers/daemon-process';
import { tokenSha256, writeTenantsFile } from '../helpers/tenants-file';

const MiB = 1024 * 1024;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const TOKENS = { a: randomBytes(24).toString('hex'), b: randomBytes(24).toString('hex') };
const MAX_PHYSICAL = 512 * MiB;

describe("one tenant's stalled ReadArray streams", () => {
  let daemon: DaemonProcess;
  let client: TensormemClient;

  beforeAll(async () => {
    const tenantsPath = writeTenantsFile(`tenants:
  - name: team-a
    token_sha256: "${tokenSha256(TOKENS.a)}"
    quota: { host: 32M }
  - name: team-b
    token_sha256: "${tokenSha256(TOKENS.b)}"
    quota: { host: 32M }
`);
    daemon = await startDaemon(['--tenants', tenantsPath, '--maxbytes', '64M', '--host-maxbytes', '64M', '--pool-chunk', '4M', '--chunk-bytes', '4M', '--maxphysicalbytes', String(MAX_PHYSICAL)]);
    client = new TensormemClient(daemon.tcpAddress);
  });

  afterAll(async () => {
    client?.close();
    expect(await daemon?.stop()).toBe(0);
  });

  it("leave the other tenants' memory alone, and give the tenant's budget back when the reader goes", async () => {
    const b = await client.openLease({ tenantToken: TOKENS.b });
    const array = await b.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [16 * MiB], placement: 'PLACEMENT_HOST_ONLY' });
    await b.write(array.array_id, Buffer.alloc(16 * MiB, 0x5a));
    const reader = spawn(process.execPath, [join(__dirname, '..', 'helpers', 'stalled-reader.js'), daemon.tcpAddress, b.token, array.array_id, '40'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise((resolve) => reader.once('exit', resolve));
    try {
      await new Promise<void>((resolve) => createInterface({ input: reader.stdout! }).once('line', () => resolve()));
      reader.kill('SIGSTOP');
      await sleep(1500);

      // Without the budget the daemon held every stream's messages here, past --maxphysicalbytes.
      const a = await client.openLease({ tenantToken: TOKENS.a });
      const own = await a.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [8 * MiB], placement: 'PLACEMENT_HOST_ONLY' });
      expect((await client.memoryInfo(a.token)).process!.physical_bytes).toBeLessThan(MAX_PHYSICAL - 64 * MiB);
      await a.free(own.array_id);
      await a.close();
    } finally {
      reader.kill('SIGKILL');
      await exited;
    }
    // The reader's streams are cancelled with its connection: the tenant's reads go on at once.
    expect((await b.readGrpc(array.array_id)).equals(Buffer.alloc(16 * MiB, 0x5a))).toBe(true);
    await b.close();
  }, 60_000);
});
