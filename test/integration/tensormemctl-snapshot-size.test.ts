/**
 * `tensormemctl snapshot` takes a reply of any size: the daemon bounds it by its --max-message-bytes.
 * A snapshot of some 700,000 blocks is past the client's default of 64 MiB, and the README's way out
 * is to raise --max-message-bytes on the daemon; tensormemctl then still refused the reply itself
 * ("Received message larger than max"), with no flag to raise its own limit. Here a stand-in
 * MemoryService answers a snapshot of 70 MiB (one block with a 70 MiB label), as a daemon of many
 * blocks would. `tensormemctl arrays` without a lease token reads the same snapshot, and was refused
 * the same way (a real daemon of 200,000 arrays with 256-character labels: 69,592,017 bytes).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Server, ServerCredentials } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadTensormemProto } from '../../src/service/proto';
import { ROOT } from '../helpers/daemon-process';
import { formatIec } from '../../src/units';

const TENSORMEMCTL = join(ROOT, 'dist', 'src', 'bin', 'tensormemctl.js');
const LABEL_BYTES = 70 * 1024 * 1024;

describe('tensormemctl snapshot of a reply past 64 MiB', () => {
  let server: Server;
  let address: string;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tensormemctl-snapshot-size-'));
    const snapshot = {
      taken_at: { seconds: 1, nanos: 0 },
      info: { backend: 'host', devices: [], tenants: [] },
      pools: [{ pool: 'host', segments: [{ chunk: 1, bytes: 256, blocks: [{ offset: 0, bytes: 256, free: false, lease_id: 'lease-1', tenant: 'default', array_id: 'arr-1', label: 'x'.repeat(LABEL_BYTES), purpose: 'host_only' }] }] }],
    };
    server = new Server({ 'grpc.max_send_message_length': -1 });
    server.addService(loadTensormemProto().proto.tensormem.v1.MemoryService.service, {
      GetMemorySnapshot: (_call: unknown, callback: (error: null, value: unknown) => void) => callback(null, { snapshot }),
    } as never);
    const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))));
    address = `127.0.0.1:${port}`;
  }, 30_000);

  afterAll(async () => {
    await new Promise<void>((resolve) => server?.tryShutdown(() => resolve()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('saves it (the daemon, not tensormemctl, bounds the reply)', async () => {
    const file = join(dir, 'big.json');
    const run = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [TENSORMEMCTL, '--address', address, 'snapshot', '-f', file], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, TENSORMEM_TOKEN: '' } });
      let stderr = '';
      child.stderr.on('data', (d) => (stderr += d));
      child.once('close', (code) => resolve({ code, stderr }));
    });
    expect(run.code).toBe(0);
    // The blocks' bytes and the file's size, each named as what it is.
    expect(run.stderr).toBe(`snapshot: 1 live block holding 256 B, written to ${file} (${formatIec(statSync(file).size)})\n`);
    const saved = JSON.parse(readFileSync(file, 'utf8'));
    expect(saved.pools[0].segments[0].blocks[0].label.length).toBe(LABEL_BYTES);
  }, 60_000);

  it('lists every array block of it (arrays without a lease token reads the same snapshot)', async () => {
    const run = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [TENSORMEMCTL, '--address', address, 'arrays', '-o', 'json'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TENSORMEM_TOKEN: '' } });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      child.once('close', (code) => resolve({ code, stdout, stderr }));
    });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const blocks = JSON.parse(run.stdout);
    expect(blocks).toHaveLength(1);
    expect(blocks[0]).toMatchObject({ pool: 'host', array_id: 'arr-1', bytes: 256 });
    expect(blocks[0].label.length).toBe(LABEL_BYTES);
  }, 60_000);
});
