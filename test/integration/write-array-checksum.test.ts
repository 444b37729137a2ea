/**
 * WriteArrayHeader.crc32c: the CRC-32C of every byte a WriteArray stream writes, checked by the daemon
 * when the stream ends, as the data plane checks X-Tensormem-Crc32c. Raw streams give the daemon any
 * CRC; the typed client's `checksum` option (LeaseSession.write, writeGrpc, tensormemctl put) is shown
 * to send it by changing one byte of a chunk between the client and the wire, as a faulty link or a
 * caller that changes its buffer under the write might.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status, type ClientWritableStream, type ServiceError } from '@grpc/grpc-js';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { putFile } from '../../src/cli/transfer';
import { clientError } from '../../src/client/client-errors';
import { LeaseSession, TensormemClient, TensormemClientError } from '../../src/client/tensormem-client';
import { crc32c, crc32cHex } from '../../src/crc32c';
import type { WriteArrayHeader } from '../../src/generated/tensormem/v1/WriteArrayHeader';
import type { WriteArrayRequest } from '../../src/generated/tensormem/v1/WriteArrayRequest';
import { daemonForTests } from '../helpers/daemon-for-tests';
import { runTensormemd } from '../helpers/daemon-process';

const KiB = 1024;
const MiB = 1024 * KiB;

function patterned(bytes: number, seed = 7): Buffer {
  return Buffer.from(Array.from({ length: bytes }, (_, i) => (i * 131 + seed) & 0xff));
}

/** A CRC that is not `crc`. */
const wrong = (crc: number) => (crc ^ 0x5a5a5a5a) >>> 0;

/** One raw WriteArray stream: `header`, then `chunks`; its answer, or its error as the typed client reads it. */
function writeArray(client: TensormemClient, lease: LeaseSession, header: WriteArrayHeader, chunks: Buffer[]): Promise<{ bytes_written: number } | TensormemClientError> {
  return new Promise((resolve) => {
    const stream = client.arrays.WriteArray(client.metadata(lease.token), (error, response) => resolve(error ? clientError(error as ServiceError) : (response as { bytes_written: number })));
    stream.write({ header });
    for (const chunk of chunks) stream.write({ chunk });
    stream.end();
  });
}

function refusal(answer: { bytes_written: number } | TensormemClientError): TensormemClientError {
  expect(answer, JSON.stringify(answer)).toBeInstanceOf(TensormemClientError);
  return answer as TensormemClientError;
}

/**
 * Makes `client`'s WriteArray streams change (XOR 0xff) the first byte of their first chunk when `corrupt`
 * says so, after the typed client computed its CRC; returns the headers the streams sent.
 */
function tamperWriteArray(client: TensormemClient, corrupt: () => boolean): WriteArrayHeader[] {
  const headers: WriteArrayHeader[] = [];
  const original = client.arrays.WriteArray.bind(client.arrays) as (...args: unknown[]) => ClientWritableStream<WriteArrayRequest>;
  vi.spyOn(client.arrays, 'WriteArray').mockImplementation(((...args: unknown[]) => {
    const stream = original(...args);
    const write = stream.write.bind(stream) as (message: WriteArrayRequest, ...rest: unknown[]) => boolean;
    let changed = false;
    stream.write = ((message: WriteArrayRequest, ...rest: unknown[]) => {
      if (message.header) headers.push(message.header);
      if (message.chunk && !changed && corrupt()) {
        changed = true;
        const copy = Buffer.from(message.chunk as Uint8Array);
        copy[0] ^= 0xff;
        return write({ chunk: copy }, ...rest);
      }
      return write(message, ...rest);
    }) as typeof stream.write;
    return stream;
  }) as never);
  return headers;
}

/** PUT `body` at `offset` on the data plane at `base` (http://HOST:PORT) with X-Tensormem-Crc32c `crc`: the status and JSON answer. */
function putWithCrc(base: string, lease: LeaseSession, arrayId: string, body: Buffer, offset: number, crc: number): Promise<{ status: number; json: Record<string, unknown> }> {
  const url = new URL(base);
  const headers = {
    Authorization: `Bearer ${lease.token}`,
    'Content-Length': String(body.byteLength),
    'Content-Range': `bytes ${offset}-${offset + body.byteLength - 1}/*`,
    'X-Tensormem-Crc32c': crc32cHex(crc),
  };
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: url.hostname, port: Number(url.port), method: 'PUT', path: `/v1/arrays/${arrayId}`, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode!, json: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown> }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('WriteArray checked end to end (WriteArrayHeader.crc32c)', () => {
  const setup = daemonForTests(['--maxbytes', '64M', '--host-maxbytes', '128M', '--data-listen', '127.0.0.1:0']);
  afterEach(() => vi.restoreAllMocks());

  async function withArray(bytes: number, run: (lease: LeaseSession, arrayId: string) => Promise<void>, placement: 'PLACEMENT_HOST_ONLY' | 'PLACEMENT_DEVICE' = 'PLACEMENT_HOST_ONLY') {
    const lease = await setup.client.openLease({ clientName: 'write-array-checksum' });
    try {
      const arrayId = (await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [bytes], placement, zero: true })).array_id;
      await run(lease, arrayId);
    } finally {
      await lease.close();
    }
  }

  it('takes a stream whose chunks together have the header\'s CRC, over several uneven chunks', async () => {
    await withArray(256 * KiB, async (lease, arrayId) => {
      const data = patterned(200 * KiB + 13);
      const chunks = [data.subarray(0, 1), data.subarray(1, 64 * KiB + 5), data.subarray(64 * KiB + 5, 64 * KiB + 5), data.subarray(64 * KiB + 5)];
      expect(await writeArray(setup.client, lease, { array_id: arrayId, offset: 100, crc32c: crc32c(data) }, chunks)).toEqual({ bytes_written: data.length });
      expect((await lease.read(arrayId, 100, data.length)).equals(data)).toBe(true);
    });
  });

  it('refuses a wrong CRC when the stream ends: INVALID_ARGUMENT, CHECKSUM_MISMATCH, naming the field, both CRCs, the offset and the bytes; the range holds what was received', async () => {
    await withArray(64 * KiB, async (lease, arrayId) => {
      const before = await setup.client.memoryInfo();
      const data = patterned(40 * KiB, 3);
      const sent = wrong(crc32c(data));
      const error = refusal(await writeArray(setup.client, lease, { array_id: arrayId, offset: 4096, crc32c: sent }, [data.subarray(0, 16 * KiB), data.subarray(16 * KiB)]));
      expect([error.code, error.reason]).toEqual([status.INVALID_ARGUMENT, 'CHECKSUM_MISMATCH']);
      expect(error.errorMetadata).toEqual({ field: 'header.crc32c', expected_crc32c: crc32cHex(sent), received_crc32c: crc32cHex(crc32c(data)), offset: '4096', bytes: String(40 * KiB) });
      expect(error.message).toContain(`header.crc32c: the ${40 * KiB} bytes received at offset 4096 have CRC-32C ${crc32cHex(crc32c(data))}, not ${crc32cHex(sent)}`);
      // As after a data plane mismatch: the chunks were written as they came, nothing else changed or was allocated.
      const after = await setup.client.memoryInfo();
      expect([after.host!.used_bytes, after.devices[0].used_bytes]).toEqual([before.host!.used_bytes, before.devices[0].used_bytes]);
      const back = await lease.read(arrayId);
      expect(back.subarray(4096, 4096 + data.length).equals(data)).toBe(true);
      expect(back.subarray(0, 4096).equals(Buffer.alloc(4096))).toBe(true);
      expect(back.subarray(4096 + data.length).equals(Buffer.alloc(64 * KiB - 4096 - data.length))).toBe(true);
    });
  });

  it('checks the bytes of every chunk: one byte changed in the last of many fails the stream', async () => {
    await withArray(128 * KiB, async (lease, arrayId) => {
      const data = patterned(128 * KiB, 11);
      const chunks = Array.from({ length: 8 }, (_, i) => Buffer.from(data.subarray(i * 16 * KiB, (i + 1) * 16 * KiB)));
      chunks[7][16 * KiB - 1] ^= 1;
      const error = refusal(await writeArray(setup.client, lease, { array_id: arrayId, offset: 0, crc32c: crc32c(data) }, chunks));
      expect(error.reason).toBe('CHECKSUM_MISMATCH');
      expect(error.errorMetadata.received_crc32c).toBe(crc32cHex(crc32c(Buffer.concat(chunks))));
    });
  });

  it('leaves a stream without a CRC unchecked, and takes a CRC of 0 as a CRC, not as none', async () => {
    await withArray(1024, async (lease, arrayId) => {
      const data = patterned(1024, 5);
      expect(crc32c(data)).not.toBe(0);
      expect(await writeArray(setup.client, lease, { array_id: arrayId, offset: 0 }, [data])).toEqual({ bytes_written: 1024 });
      const error = refusal(await writeArray(setup.client, lease, { array_id: arrayId, offset: 0, crc32c: 0 }, [data]));
      expect([error.reason, error.errorMetadata.expected_crc32c, error.errorMetadata.received_crc32c]).toEqual(['CHECKSUM_MISMATCH', '00000000', crc32cHex(crc32c(data))]);
    });
  });

  it('a stream of no chunks has the CRC of no bytes (0): 0 is taken, any other refused with bytes 0', async () => {
    await withArray(16, async (lease, arrayId) => {
      expect(await writeArray(setup.client, lease, { array_id: arrayId, offset: 16, crc32c: 0 }, [])).toEqual({ bytes_written: 0 });
      expect(await writeArray(setup.client, lease, { array_id: arrayId, offset: 8, crc32c: 0 }, [Buffer.alloc(0)])).toEqual({ bytes_written: 0 });
      const error = refusal(await writeArray(setup.client, lease, { array_id: arrayId, offset: 8, crc32c: 0xe3069283 }, []));
      expect([error.code, error.reason]).toEqual([status.INVALID_ARGUMENT, 'CHECKSUM_MISMATCH']);
      expect(error.errorMetadata).toEqual({ field: 'header.crc32c', expected_crc32c: 'e3069283', received_crc32c: '00000000', offset: '8', bytes: '0' });
    });
  });

  it('answers a wrong CRC as the data plane answers the same wrong CRC for the same bytes', async () => {
    await withArray(2 * MiB, async (lease, arrayId) => {
      const data = patterned(MiB + 3, 9);
      const sent = wrong(crc32c(data));
      const grpc = refusal(await writeArray(setup.client, lease, { array_id: arrayId, offset: 512, crc32c: sent }, [data.subarray(0, MiB), data.subarray(MiB)]));
      const dataAddress = setup.daemon.logs.find((entry) => entry.event === 'listening')!.dataAddress as string;
      const http = await putWithCrc(dataAddress, lease, arrayId, data, 512, sent);
      expect(http.status).toBe(400);
      expect([http.json.status, http.json.reason]).toEqual([status[grpc.code], grpc.reason]);
      const { field: httpField, ...httpFacts } = http.json.metadata as Record<string, string>;
      const { field: grpcField, ...grpcFacts } = grpc.errorMetadata;
      expect(httpFacts).toEqual(grpcFacts);
      // Each names its own field, in its message too.
      expect([httpField, grpcField]).toEqual(['X-Tensormem-Crc32c', 'header.crc32c']);
      expect(String(http.json.message).replace(httpField, 'FIELD').replace('a body is never staged', 'STAGING')).toBe(grpc.details.replace(grpcField, 'FIELD').replace("a stream's chunks are never staged", 'STAGING'));
    });
  });

  it('LeaseSession.write with checksum sends the CRC over WriteArray: a chunk changed on the way fails CHECKSUM_MISMATCH, and without checksum it lands', async () => {
    await withArray(64 * KiB, async (lease, arrayId) => {
      let corrupt = true;
      const headers = tamperWriteArray(setup.client, () => corrupt);
      const data = patterned(48 * KiB, 1);
      const error = await lease.write(arrayId, data, 0, 16 * KiB, { checksum: true }).then(
        () => undefined,
        (e: unknown) => e as TensormemClientError,
      );
      expect([error?.code, error?.reason]).toEqual([status.INVALID_ARGUMENT, 'CHECKSUM_MISMATCH']);
      expect(error!.errorMetadata).toMatchObject({ field: 'header.crc32c', expected_crc32c: crc32cHex(crc32c(data)), bytes: String(48 * KiB) });
      expect(lease.transfers).toEqual({ http: 0, grpc: 1 });
      // Unchecked, the changed byte is written and the write succeeds (what the tampering does).
      expect(await lease.write(arrayId, data, 0, 16 * KiB)).toBe(48 * KiB);
      expect((await lease.read(arrayId, 0, 1))[0]).toBe(data[0] ^ 0xff);
      // Checked through an honest link, the write succeeds; writeGrpc takes the option too.
      corrupt = false;
      expect(await lease.write(arrayId, data, 0, 16 * KiB, { checksum: true })).toBe(48 * KiB);
      expect(await lease.writeGrpc(arrayId, data, 16 * KiB, 4 * KiB, { checksum: true })).toBe(48 * KiB);
      expect(headers.map((header) => header.crc32c)).toEqual([crc32c(data), undefined, crc32c(data), crc32c(data)]);
      expect((await lease.read(arrayId, 16 * KiB, 48 * KiB)).equals(data)).toBe(true);
    });
  });

  it('a checked write that falls back from the data plane to WriteArray carries the CRC there too', async () => {
    await withArray(4 * MiB, async (lease, arrayId) => {
      // A data plane endpoint where nothing listens: the write goes over WriteArray instead.
      lease.dataPlane = { host: '127.0.0.1', port: 1 };
      const headers = tamperWriteArray(setup.client, () => true);
      const data = patterned(2 * MiB, 2);
      const error = await lease.write(arrayId, data, MiB, undefined, { checksum: true }).then(
        () => undefined,
        (e: unknown) => e as TensormemClientError,
      );
      expect(error?.reason).toBe('CHECKSUM_MISMATCH');
      expect(error!.errorMetadata).toMatchObject({ field: 'header.crc32c', offset: String(MiB), expected_crc32c: crc32cHex(crc32c(data)) });
      expect(lease.transfers.grpc).toBe(1);
      expect(headers).toEqual([{ array_id: arrayId, offset: MiB, crc32c: crc32c(data) }]);
    });
  });

  it("tensormemctl put checks its pieces over WriteArray too: a byte changed in a small piece fails the put with CHECKSUM_MISMATCH", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tensormem-put-grpc-crc-'));
    tamperWriteArray(setup.client, () => true);
    try {
      const file = join(dir, 'small.bin');
      writeFileSync(file, patterned(100 * KiB, 4));
      const failure = await putFile(setup.client, file, { dtype: 'uint8', placement: 'PLACEMENT_HOST_ONLY' }).then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      expect(failure?.message).toMatch(/CHECKSUM_MISMATCH/);
      expect(failure?.message).toContain(`header.crc32c: the ${100 * KiB} bytes received at offset 0 have CRC-32C`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

it('a TENSORMEM_CRC32C the daemon does not take stops its start without a data plane too (WriteArray would use it)', async () => {
  const run = await runTensormemd(['--backend', 'host', '--emulated-device', '2G', '--listen', '127.0.0.1:0', '--metrics-listen', '127.0.0.1:0', '--data-listen', 'off'], { ...process.env, TENSORMEM_CRC32C: 'sse' });
  expect(run.code).toBe(1);
  expect(run.stderr).toContain('TENSORMEM_CRC32C must be one of auto, js, table (or unset), not "sse"');
});
