/**
 * A bounded fuzz run: thousands of random, mutated and hostile messages and metadata to every RPC of
 * tensormem.v1. The daemon must not crash, must answer only proper status codes (never INTERNAL or
 * UNKNOWN), and after each batch the accounting must hold: per pool, the live blocks of the snapshot
 * add up to used_bytes; per tenant, its blocks add up to its used bytes.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { Client, Metadata, credentials, status, ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TensormemClient } from '../../src/client/tensormem-client';
import { loadTensormemProto } from '../../src/service/proto';
import { DaemonProcess, startDaemon } from '../helpers/daemon-process';

const BATCHES = Number(process.env.TENSORMEM_FUZZ_BATCHES ?? 10);
const CALLS_PER_BATCH = 300;
/** Every call ends by then; a batch lasts at most about this long (a WatchMemory with a long interval waits for it). */
const CALL_DEADLINE_MS = 3000;
const ALLOWED = new Set([
  status.OK,
  status.INVALID_ARGUMENT,
  status.OUT_OF_RANGE,
  status.NOT_FOUND,
  status.UNAUTHENTICATED,
  status.PERMISSION_DENIED,
  status.RESOURCE_EXHAUSTED,
  status.FAILED_PRECONDITION,
  status.DEADLINE_EXCEEDED,
  status.CANCELLED,
]);

interface MethodInfo {
  path: string;
  requestStream: boolean;
  responseStream: boolean;
  serialize: (value: object) => Buffer;
  sample: () => object;
}

const identity = (b: Buffer) => b;

describe('fuzz', () => {
  let daemon: DaemonProcess;
  let typed: TensormemClient;
  let raw: Client;
  const tokens: string[] = [];
  const arrayIds: string[] = [];

  beforeAll(async () => {
    daemon = await startDaemon(['--maxbytes', '64M', '--host-maxbytes', '32M', '--pool-chunk', '4M', '--max-message-bytes', '1M']);
    typed = new TensormemClient(daemon.tcpAddress);
    raw = new Client(daemon.tcpAddress, credentials.createInsecure(), { 'grpc.max_send_message_length': 4 * 1024 * 1024 });
    for (let i = 0; i < 4; i++) {
      const lease = await typed.openLease({ tenant: `fuzz-${i % 2}` });
      tokens.push(lease.token);
      arrayIds.push((await lease.allocate({ dataType: 'DATA_TYPE_FLOAT32', shape: [64] })).array_id);
    }
  });

  afterAll(async () => {
    raw?.close();
    typed?.close();
    expect(await daemon?.stop()).toBe(0);
  });

  const pick = <T>(values: readonly T[]): T => values[randomInt(values.length)];
  const randomString = () => pick(['', 'x', 'arr-' + randomBytes(12).toString('hex'), pick(arrayIds), randomBytes(randomInt(1, 40)).toString('latin1'), 'a'.repeat(randomInt(200, 5000))]);
  const randomNumber = () => pick([0, 1, -1, 7, 255, 2 ** 31, 2 ** 32 + 1, Number.MAX_SAFE_INTEGER, randomInt(0, 1 << 30), -randomInt(1, 1 << 30)]);
  const randomEnum = () => pick([0, 1, 2, 3, 5, 10, 11, 99, -1, 'DATA_TYPE_FLOAT32', 'PLACEMENT_HOST_ONLY', 'SYNC_DIRECTION_TO_HOST']);

  function methods(): MethodInfo[] {
    const { definition } = loadTensormemProto();
    const found: MethodInfo[] = [];
    for (const [serviceName, service] of Object.entries(definition)) {
      if (!serviceName.startsWith('tensormem.v1.') || !(service as object) || 'format' in (service as object)) continue;
      for (const method of Object.values(service as Record<string, { path: string; requestStream: boolean; responseStream: boolean; requestSerialize: (v: object) => Buffer }>)) {
        found.push({
          path: method.path,
          requestStream: method.requestStream,
          responseStream: method.responseStream,
          serialize: method.requestSerialize,
          sample: () => ({
            lease_id: randomString(),
            array_id: randomString(),
            tenant: randomString(),
            client_name: randomString(),
            ttl_seconds: Math.abs(randomNumber()) % 2 ** 32,
            data_type: randomEnum(),
            placement: randomEnum(),
            direction: randomEnum(),
            shape: Array.from({ length: randomInt(0, 6) }, randomNumber),
            device: Math.abs(randomNumber()) % 2 ** 32,
            workspace_id: pick(['', randomString()]),
            zero: pick([true, false]),
            label: randomString(),
            request_id: pick(['', randomString()]),
            offset: Math.abs(randomNumber()),
            length: Math.abs(randomNumber()),
            interval_ms: pick([0, 1, 49, 50, 1000]),
            wait_for_memory: false,
            detached: pick([true, false]),
            ...(pick([true, false]) ? { header: { array_id: pick(arrayIds), offset: Math.abs(randomNumber()) } } : { chunk: randomBytes(randomInt(0, 5000)) }),
          }),
        });
      }
    }
    return found;
  }

  function payload(method: MethodInfo): Buffer {
    switch (randomInt(4)) {
      case 0:
        return randomBytes(randomInt(0, 300));
      case 1: {
        // A valid message with hostile values, then a few bytes flipped.
        const bytes = Buffer.from(method.serialize(method.sample()));
        for (let i = 0; i < randomInt(1, 4) && bytes.length > 0; i++) bytes[randomInt(bytes.length)] = randomInt(256);
        return bytes;
      }
      default:
        try {
          return Buffer.from(method.serialize(method.sample()));
        } catch {
          return randomBytes(16);
        }
    }
  }

  function metadata(): Metadata {
    const md = new Metadata();
    switch (randomInt(5)) {
      case 0:
        break;
      case 1:
        md.set('authorization', `Bearer ${pick(tokens)}`);
        break;
      case 2:
        md.set('authorization', pick(['Bearer', 'Bearer ', 'Basic abc', `Bearer ${randomBytes(32).toString('base64url')}`, `bearer ${pick(tokens)} extra`]));
        break;
      case 3:
        md.set('authorization', `Bearer ${pick(tokens)}`);
        md.set('x-junk', randomBytes(20).toString('hex'));
        break;
      default:
        md.set('authorization', 'Bearer ' + 'z'.repeat(randomInt(1, 4000)));
    }
    return md;
  }

  function call(method: MethodInfo): Promise<number> {
    const options = { deadline: Date.now() + CALL_DEADLINE_MS };
    return new Promise((resolve) => {
      const done = (error: ServiceError | null) => resolve(error ? error.code : status.OK);
      if (!method.requestStream && !method.responseStream) {
        raw.makeUnaryRequest(method.path, identity, identity, payload(method), metadata(), options, done);
      } else if (!method.requestStream) {
        const stream = raw.makeServerStreamRequest(method.path, identity, identity, payload(method), metadata(), options);
        let received = 0;
        stream.on('data', () => {
          // A second message shows the stream kept going (WatchMemory's default interval: 1 s).
          if (++received >= 2) stream.cancel();
        });
        stream.on('status', (s: { code: number }) => resolve(s.code));
        stream.on('error', () => {});
      } else {
        const stream = method.responseStream
          ? raw.makeBidiStreamRequest(method.path, identity, identity, metadata(), options)
          : raw.makeClientStreamRequest(method.path, identity, identity, metadata(), options, () => {});
        stream.on('status', (s: { code: number }) => resolve(s.code));
        stream.on('error', () => {});
        stream.on('data', () => {});
        for (let i = 0; i < randomInt(0, 4); i++) stream.write(payload(method));
        stream.end();
      }
    });
  }

  async function checkAccounting(): Promise<void> {
    const snapshot = await typed.memorySnapshot();
    const info = snapshot.info!;
    const byTenant = new Map<string, number>();
    for (const pool of snapshot.pools) {
      const live = pool.segments.flatMap((segment) => segment.blocks).filter((block) => !block.free);
      for (const block of live) byTenant.set(block.tenant, (byTenant.get(block.tenant) ?? 0) + block.bytes);
      const usedBytes = live.reduce((sum, block) => sum + block.bytes, 0);
      if (pool.pool === 'host') expect(usedBytes).toBe(info.host!.used_bytes);
      else expect(usedBytes).toBe(info.devices[Number(pool.pool.split(':')[1])].used_bytes);
    }
    for (const tenant of info.tenants) expect(byTenant.get(tenant.tenant) ?? 0).toBe(tenant.used_bytes);
  }

  it(`answers ${BATCHES} × ${CALLS_PER_BATCH} hostile calls with proper codes and keeps its accounting`, async () => {
    const all = methods();
    expect(all.length).toBeGreaterThanOrEqual(18);
    const seen = new Map<number, number>();
    for (let batch = 0; batch < BATCHES; batch++) {
      const codes = await Promise.all(Array.from({ length: CALLS_PER_BATCH }, () => call(pick(all))));
      for (const code of codes) seen.set(code, (seen.get(code) ?? 0) + 1);
      const improper = codes.filter((code) => !ALLOWED.has(code));
      expect(improper.map((code) => status[code])).toEqual([]);
      expect(daemon.child.exitCode).toBeNull();
      await checkAccounting();
    }
    // The run reached the daemon's validation, not only the transport.
    expect(seen.get(status.INVALID_ARGUMENT) ?? 0).toBeGreaterThan(50);
    expect(seen.get(status.UNAUTHENTICATED) ?? 0).toBeGreaterThan(50);
    expect(daemon.logs.filter((entry) => entry.msg === 'internal error')).toEqual([]);
  }, BATCHES * (CALL_DEADLINE_MS + 1000) + 10_000);
});
