/**
 * Writes checked end to end: LeaseSession.write with `checksum` and `tensormemctl put` (putFile), each
 * piece's CRC-32C sent with it over the data plane, through a proxy that flips one byte of each
 * connection's first request body, as a faulty link, switch or proxy might. Unchecked, the flipped byte
 * lands in the array and the write succeeds; checked, the daemon refuses it (CHECKSUM_MISMATCH).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { putFile } from '../../src/cli/transfer';
import { TensormemClient, TensormemClientError } from '../../src/client/tensormem-client';
import { crc32c, crc32cHex } from '../../src/crc32c';
import type { DataPlaneEndpoint } from '../../src/dataplane/data-plane-client';
import { daemonForTests } from '../helpers/daemon-for-tests';
import { ROOT } from '../helpers/daemon-process';
import { tcpProxy, type TcpProxy } from '../helpers/tcp-proxy';

const MiB = 1024 * 1024;
const TENSORMEMCTL = join(ROOT, 'dist', 'src', 'bin', 'tensormemctl.js');

/** A proxy to `target` that flips (XOR 0xff) the byte `at` past the head of each connection's first request body. */
function corruptingProxy(target: DataPlaneEndpoint, at: number): Promise<TcpProxy> {
  return tcpProxy(target as { host: string; port: number }, () => {
    let head = '';
    let body = -1; // body bytes passed so far; -1 while the head is still coming
    let flipped = false;
    return (bytes, up) => {
      let start = 0;
      if (body < 0) {
        head += bytes.toString('latin1');
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return void up.write(bytes);
        start = bytes.length - (head.length - (end + 4));
        body = 0;
      }
      const position = at - body + start;
      if (!flipped && position >= start && position < bytes.length) {
        bytes[position] ^= 0xff;
        flipped = true;
      }
      body += bytes.length - start;
      up.write(bytes);
    };
  });
}

function patterned(bytes: number): Buffer {
  return Buffer.from(Array.from({ length: bytes }, (_, i) => (i * 131 + 7) & 0xff));
}

describe('writes checked end to end (X-Tensormem-Crc32c)', () => {
  const setup = daemonForTests(['--maxbytes', '64M', '--host-maxbytes', '128M', '--data-listen', '127.0.0.1:0']);
  afterEach(() => vi.restoreAllMocks());

  async function throughProxy(at: number) {
    const lease = await setup.client.openLease({ clientName: 'checksum' });
    const proxy = await corruptingProxy(lease.dataPlane!, at);
    lease.dataPlane = proxy.endpoint;
    const arrayId = (await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [4 * MiB], placement: 'PLACEMENT_HOST_ONLY', zero: true })).array_id;
    return { lease, proxy, arrayId };
  }

  it('unchecked, a byte flipped on the way is written and the write succeeds (what the proxy does)', async () => {
    const { lease, proxy, arrayId } = await throughProxy(12_345);
    try {
      const data = patterned(2 * MiB);
      expect(await lease.write(arrayId, data)).toBe(2 * MiB);
      expect(lease.transfers.http).toBe(1);
      const back = await lease.read(arrayId, 0, 2 * MiB);
      expect(back[12_345]).toBe(data[12_345] ^ 0xff);
      back[12_345] ^= 0xff;
      expect(back.equals(data)).toBe(true);
    } finally {
      await lease.close();
      await proxy.close();
    }
  });

  it('with checksum, the daemon refuses it: CHECKSUM_MISMATCH naming the range and both CRCs', async () => {
    const { lease, proxy, arrayId } = await throughProxy(12_345);
    try {
      const error = await lease.write(arrayId, patterned(2 * MiB), 4096, undefined, { checksum: true }).then(
        () => undefined,
        (e: unknown) => e as TensormemClientError,
      );
      expect(error).toBeInstanceOf(TensormemClientError);
      expect([error!.code, error!.reason]).toEqual([status.INVALID_ARGUMENT, 'CHECKSUM_MISMATCH']);
      expect(error!.errorMetadata).toMatchObject({ field: 'X-Tensormem-Crc32c', offset: '4096', bytes: String(2 * MiB), expected_crc32c: crc32cHex(crc32c(patterned(2 * MiB))) });
      expect(error!.errorMetadata.received_crc32c).toMatch(/^[0-9a-f]{8}$/);
      expect(error!.errorMetadata.received_crc32c).not.toBe(error!.errorMetadata.expected_crc32c);
      // Through a link that changes nothing the same checked write succeeds.
      lease.dataPlane = (await setup.client.openLease({ clientName: 'direct' }).then(async (other) => {
        const endpoint = other.dataPlane;
        await other.close();
        return endpoint;
      }))!;
      expect(await lease.write(arrayId, patterned(2 * MiB), 4096, undefined, { checksum: true })).toBe(2 * MiB);
      expect((await lease.read(arrayId, 4096, 2 * MiB)).equals(patterned(2 * MiB))).toBe(true);
    } finally {
      await lease.close();
      await proxy.close();
    }
  });

  it('refuses a checksum option that is not a boolean and an option write does not take, naming them', async () => {
    const lease = await setup.client.openLease({ clientName: 'options' });
    try {
      const arrayId = (await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [16], placement: 'PLACEMENT_HOST_ONLY' })).array_id;
      await expect(lease.write(arrayId, Buffer.alloc(16), 0, undefined, { checksum: 'yes' as unknown as boolean })).rejects.toThrow('Expected true or false for write option checksum but received "yes"');
      await expect(lease.write(arrayId, Buffer.alloc(16), 0, undefined, { checksumm: true } as never)).rejects.toThrow('Expected an option write takes (did you mean checksum? it takes checksum) for write option checksumm but received true');
      // writeGrpc takes the same options, checked the same way.
      await expect(lease.writeGrpc(arrayId, Buffer.alloc(16), 0, undefined, { checksum: 'yes' as unknown as boolean })).rejects.toThrow('Expected true or false for write option checksum but received "yes"');
      await expect(lease.writeGrpc(arrayId, Buffer.alloc(16), 0, undefined, { checksumm: true } as never)).rejects.toThrow('for write option checksumm but received true');
    } finally {
      await lease.close();
    }
  });

  it('tensormemctl put sends each piece\'s CRC: a byte flipped on the way fails the put with CHECKSUM_MISMATCH', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tensormem-put-crc-'));
    const direct = await setup.client.openLease({ clientName: 'probe' });
    const proxy = await corruptingProxy(direct.dataPlane!, 777);
    await direct.close();
    // put's lease is told the proxy is its data plane.
    vi.spyOn(TensormemClient.prototype, 'dataPlaneEndpoint').mockReturnValue(proxy.endpoint);
    try {
      const file = join(dir, 'data.bin');
      writeFileSync(file, patterned(3 * MiB));
      const failure = await putFile(setup.client, file, { dtype: 'uint8', placement: 'PLACEMENT_HOST_ONLY' }).then(
        () => undefined,
        (e: unknown) => e as TensormemClientError,
      );
      expect(failure?.message).toMatch(/CHECKSUM_MISMATCH/);
      expect(failure?.message).toMatch(/X-Tensormem-Crc32c: the 3145728 bytes received at offset 0 have CRC-32C/);
    } finally {
      await proxy.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('TENSORMEM_CRC32C=table where the addon does not load: put checks its pieces with the JavaScript CRC instead of failing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tensormem-put-no-addon-'));
    try {
      // One piece over the data plane (3 MiB), one over WriteArray (under 1 MiB).
      for (const bytes of [3 * MiB, 1000]) {
        const file = join(dir, `data-${bytes}.bin`);
        writeFileSync(file, patterned(bytes));
        // A copy whose addon was not built, as TENSORMEM_NATIVE_ADDON pointing nowhere makes it.
        const env = { ...process.env, TENSORMEM_TOKEN: '', TENSORMEM_NATIVE_ADDON: join(dir, 'missing.node'), TENSORMEM_CRC32C: 'table' };
        const put = spawnSync(process.execPath, [TENSORMEMCTL, '--address', setup.daemon.tcpAddress, 'put', file, '--dtype', 'uint8', '-o', 'json'], { encoding: 'utf8', env });
        expect(put.stderr).toBe('');
        expect(put.status).toBe(0);
        const result = JSON.parse(put.stdout) as { array: { array_id: string }; bytes_written: number; lease: { token: string } };
        expect(result.bytes_written).toBe(bytes);
        const lease = setup.client.sessionOf(result.lease.token);
        try {
          expect((await lease.read(result.array.array_id)).equals(readFileSync(file))).toBe(true);
        } finally {
          await lease.close();
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
