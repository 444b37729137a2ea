/**
 * Interop: a Python grpcio client (test/interop/python_client.py), written only from README, DESIGN.md and
 * the .proto files, drives tensormemd as a process over TCP. Proves the public contract is usable from
 * another language: stubs generated as README says (Debian's protoc 3.21 and grpc_python_plugin, every
 * .proto including workspace.proto's proto3 `optional`), bearer metadata, client/server streams,
 * google.rpc.Status details in grpc-status-details-bin, grpc.health.v1, server reflection's descriptors
 * built into a protobuf descriptor pool, the HTTP/1.1 data plane from http.client, ExportArray mapped by
 * mmap of /dev/shm, an ND4J-style workspace loop, and (against a second daemon, with a tenants file) a
 * lease opened with a tenant token and kept alive over KeepAlive and RenewLease. Each scenario is one run
 * of the client with its own lease.
 *
 * Needs /usr/bin/python3 with Debian's python3-grpcio, and protobuf-compiler, protobuf-compiler-grpc and
 * libprotobuf-dev (google/protobuf/*.proto) (.ci/run installs them). Without them the test fails, naming
 * what is missing, unless TENSORMEM_SKIP_INTEROP=1, which skips it visibly with the same reason.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DaemonProcess, startDaemon } from '../helpers/daemon-process';
import { tenantsYaml, writeTenantsFile } from '../helpers/tenants-file';
import { CLIENT, PYTHON, declareMissingPython, prepareStubs } from './python-setup';

const BYTE_SIZE = 256 * 1024 * 4; // FLOAT32 [256, 1024]
const PAGE = 4096;
const MiB = 1024 * 1024;

const roundUpToPage = (n: number) => Math.ceil(n / PAGE) * PAGE;

// The JSON a scenario prints: loosely typed, checked field by field below.
type Result = Record<string, any>;

const { stubs, problem } = prepareStubs();

function runClient(scenario: string, address: string, env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    // Asynchronous on purpose: the daemon's log pipes are drained by this event loop.
    const options = { timeout: 60_000, maxBuffer: 4 * 1024 * 1024, env: { ...process.env, ...env } };
    execFile(PYTHON, [CLIENT, '--stubs', stubs!, scenario, address], options, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** Runs one scenario and returns its JSON result, failing on any mismatch the client reported. */
async function scenario(name: string, address: string, env: NodeJS.ProcessEnv = {}): Promise<Result> {
  const { code, stdout, stderr } = await runClient(name, address, env);
  const lines = stdout.trim().split('\n');
  let result: Result;
  try {
    result = JSON.parse(lines[lines.length - 1]) as Result;
  } catch {
    throw new Error(`python_client.py ${name} printed no JSON (exit ${code}):\nstdout: ${stdout}\nstderr: ${stderr}`);
  }
  expect(result.failures ?? [], `mismatches reported by python_client.py ${name}:\n${stderr}`).toEqual([]);
  expect(result.error, `python_client.py ${name} error (${JSON.stringify(result.trace)})`).toBeUndefined();
  expect(code, `python_client.py ${name} exit code; stderr:\n${stderr}`).toBe(0);
  expect(result).toMatchObject({ ok: true, scenario: name });
  return result;
}

describe('interop: Python grpcio client against tensormemd', () => {
  if (declareMissingPython(problem)) return;

  let daemon: DaemonProcess | undefined;

  beforeAll(async () => {
    daemon = await startDaemon(['--data-listen', '127.0.0.1:0']);
  });

  afterAll(async () => {
    // Only if a test failed before stopping it.
    if (daemon && daemon.child.exitCode === null) await daemon.stop();
    rmSync(stubs!, { recursive: true, force: true });
  });

  it('runs the lease / array / memory / error walk', async () => {
    const result = await scenario('walk', daemon!.tcpAddress);
    expect(result).toMatchObject({
      health: 'SERVING',
      byte_size: BYTE_SIZE,
      bytes_written: BYTE_SIZE,
      device_used_delta: BYTE_SIZE,
      tenant_device_used_bytes: BYTE_SIZE,
      tenant_leases: 1,
      invalid_shape_code: 'INVALID_ARGUMENT',
      invalid_shape_reason: 'INVALID_SHAPE',
      wrong_token_code: 'UNAUTHENTICATED',
      freed_get_code: 'NOT_FOUND',
      close_freed_bytes: 0,
    });
    expect(result.reflection_files).toEqual(expect.arrayContaining(['tensormem/v1/array.proto', 'tensormem/v1/workspace.proto', 'google/protobuf/timestamp.proto']));
    expect(result.sha256_read).toBe(result.sha256_written);
    expect(result.sha256_read).toMatch(/^[0-9a-f]{64}$/);
    expect(result.lease_id).toEqual(expect.any(String));
    expect(result.array_id).toEqual(expect.any(String));
    // Freed bytes: the device block plus its host mirror (aligned), as GetArray's held_bytes said.
    expect(result.freed_bytes).toBe(result.held_bytes);
    expect(result.freed_bytes as number).toBeGreaterThanOrEqual(BYTE_SIZE);
    expect(result.tenant_used_bytes).toBe(result.held_bytes);
    expect(result.device_used_after_free).toBe(result.device_used_before);
    expect(result.device_used_final).toBe(result.device_used_before);
  }, 60_000);

  it('moves bytes over the HTTP/1.1 data plane with http.client: CRC-32C PUTs, a wrong CRC refused, Range GETs, 416', async () => {
    const size = 64 * 1024 * 4; // FLOAT32 [64, 1024]
    const r = await scenario('dataplane', daemon!.tcpAddress);
    expect(r.data_address).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(r.byte_size).toBe(size);
    // PUT of the whole array with the CRC as 8 hex digits: 200, the JSON body, the CRC echoed.
    expect(r.put).toMatchObject({ status: 200, body: { offset: 0, bytes_written: size } });
    expect(r.put.crc_echo).toBe(r.put.crc_sent);
    // PUT at Content-Range bytes 4096-8191/* with the CRC as base64: echoed as 8 hex digits.
    expect(r.put_range).toMatchObject({ status: 200, body: { array_id: r.put.body.array_id, offset: 4096, bytes_written: 4096 } });
    expect(r.put_range.crc_echo).toMatch(/^[0-9a-f]{8}$/);
    // A wrong CRC (the right one XOR 1): 400 CHECKSUM_MISMATCH, both CRCs in metadata, nothing reported
    // written; bytes outside the range unchanged, the range holding what was received (README: Checksum).
    expect(r.put_wrong_crc.status).toBe(400);
    expect(r.put_wrong_crc.body).toMatchObject({
      code: 400,
      status: 'INVALID_ARGUMENT',
      reason: 'CHECKSUM_MISMATCH',
      metadata: { field: 'X-Tensormem-Crc32c', offset: '8192', bytes: '4096' },
    });
    expect(r.put_wrong_crc.body).not.toHaveProperty('bytes_written');
    const { expected_crc32c: sentCrc, received_crc32c: receivedCrc } = r.put_wrong_crc.body.metadata;
    expect(parseInt(sentCrc, 16) ^ parseInt(receivedCrc, 16)).toBe(1);
    expect(r.wrong_crc_outside_unchanged).toBe(true);
    expect(r.wrong_crc_range_holds).toBe('received');
    // A malformed CRC is refused from the headers: 400, and not one byte of the array changed.
    expect(r.put_malformed_crc).toMatchObject({ status: 400, body: { code: 400, status: 'INVALID_ARGUMENT', metadata: { field: 'X-Tensormem-Crc32c' } } });
    // GET of the whole array: the bytes, the type and shape headers, no CRC header on a GET.
    expect(r.get).toEqual({ status: 200, content_length: String(size), data_type: 'DATA_TYPE_FLOAT32', shape: '64,1024', crc_header: null });
    expect(r.sha256_get).toBe(r.sha256_expected);
    // Range GETs: 206 with Content-Range (a LAST past the end clipped), then 416 with bytes */SIZE.
    expect(r.get_range).toEqual({ status: 206, content_range: `bytes 4096-8191/${size}`, length: 4096 });
    expect(r.get_suffix).toEqual({ status: 206, content_range: `bytes ${size - 10}-${size - 1}/${size}`, length: 10 });
    expect(r.get_clipped).toEqual({ status: 206, content_range: `bytes ${size - 100}-${size - 1}/${size}`, length: 100 });
    expect(r.get_unsatisfiable).toEqual({ status: 416, content_range: `bytes */${size}` });
    expect(r.get_wrong_token.status).toBe(401);
    expect(r.get_wrong_token.www_authenticate).toMatch(/^Bearer\b/);
    expect(r.freed_bytes_positive).toBe(true);
    expect(r.get_freed_status).toBe(404);
  }, 60_000);

  it('maps ExportArray regions from /dev/shm: a HOST_ONLY array and a DEVICE array host side, both ways, unlinked at FreeArray', async () => {
    const r = await scenario('export', daemon!.tcpAddress);
    // HOST_ONLY UINT8 [100000]: moved into a region of its own, page-rounded.
    expect(r).toMatchObject({ host_handle: 'shm', host_moved: true, host_exportable_after: true });
    const host = r.host_region;
    expect(host).toMatchObject({ length: 100_000, length_is_byte_size: true, name_pattern: true, page_multiple: true, fits: true });
    expect(host.region_bytes).toBe(roundUpToPage(host.offset + host.length));
    expect(host.file_size).toBe(host.region_bytes);
    expect(r.host_reexport).toEqual({ same_name: true, moved: false, same_offset: true });
    // The region counts in place of the pool block, so FreeArray gives back the whole region.
    expect(r.host_freed_bytes).toBe(host.region_bytes);
    expect(r.host_name_after_free).toBe(false);
    expect(r.host_open_after_free).toBe('ENOENT');
    expect(r.host_mapping_after_free_intact).toBe(true);
    // DEVICE FLOAT32 [300, 100] exported on its host side (the mirror).
    expect(r).toMatchObject({ device_handle: 'shm', device_moved: false, device_host_valid: true });
    const device = r.device_region;
    expect(device).toMatchObject({ length: 120_000, length_is_byte_size: true, name_pattern: true, page_multiple: true, fits: true });
    expect(device.region_bytes).toBe(roundUpToPage(device.offset + device.length));
    expect(device.file_size).toBe(device.region_bytes);
    // The device side needs the cuda backend.
    expect(r.device_side_error[0]).toBe('FAILED_PRECONDITION');
    expect(r.device_side_error[1]).toContain('EXPORT_SIDE_HOST');
    expect(r.device_freed_bytes_positive).toBe(true);
    expect(r.device_name_after_free).toBe(false);
  }, 60_000);

  it('runs an ND4J workspace loop: FIRST_LOOP learns peak + 30 %, ScopeOut arrays outlive it, AcquireCudnnWorkspace grows only', async () => {
    const r = await scenario('workspace', daemon!.tcpAddress);
    // Per cycle: FLOAT32 [64, 784] (200,704 B), its attached DuplicateArray (200,704 B), FLOAT32 [10]
    // (40 B, aligned to 48). FIRST_LOOP learns the first cycle's peak and OVERALLOCATE adds
    // floor(peak × overallocation_limit), 0.3 by default (nd4j-semantics.md §8).
    const peak = 200_704 * 2 + 48;
    const learned = peak + Math.floor(peak * 0.3);
    expect(learned).toBe(521_892);
    expect(r.config_overallocation_limit).toBe(0.3);
    expect(r.created).toMatchObject({ current_size: 0, cycles_count: 0, scope_active: false });
    const cycles = r.cycles as Result[];
    expect(cycles).toHaveLength(3);
    cycles.forEach((c, i) => {
      expect(c.attached, `cycle ${i}`).toEqual([true, true, true]);
      expect(c.in_workspace, `cycle ${i}`).toEqual([true, true, true]);
      expect(c.sizes, `cycle ${i}`).toEqual([200_704, 200_704, 40]);
      expect(c.dup_matches, `cycle ${i}`).toBe(true);
      expect({ attached: c.scoped_out_attached, workspace_id: c.scoped_out_workspace_id }, `cycle ${i} ScopeOut array`).toEqual({ attached: false, workspace_id: '' });
      expect(c.entered, `cycle ${i} EnterWorkspace`).toMatchObject({ cycles_count: i, scope_active: true, current: true, current_size: i === 0 ? 0 : learned });
      // The first LeaveWorkspace closes the ScopeOut block only; the second ends the cycle.
      expect(c.leave_block_scope_active, `cycle ${i}`).toBe(true);
      expect(c.left, `cycle ${i} LeaveWorkspace`).toMatchObject({
        cycles_count: i + 1,
        scope_active: false,
        current: false,
        current_size: learned,
        initial_block_size: peak,
        last_cycle_allocations: peak,
        max_cycle_allocations: peak,
        spilled_size: 0,
        number_of_external_allocations: 0,
      });
      if (i > 0) expect(c.entered.generation_id, `cycle ${i} generation`).toBeGreaterThan(cycles[i - 1].entered.generation_id);
    });
    // Learned cycles take nothing more from the pools.
    expect(cycles[2].left.held_bytes).toBe(cycles[1].left.held_bytes);
    expect(r.final).toMatchObject({ current_size: learned, cycles_count: 3, scope_active: false });
    expect([r.old_array_error[0], r.old_array_error[2]]).toEqual(['FAILED_PRECONDITION', 'ARRAY_OUT_OF_SCOPE']);
    expect(r.kept_arrays_intact).toBe(true);
    expect(r.leave_without_scope_error[0]).toBe('FAILED_PRECONDITION');
    // cuDNN scratch without cuDNN: sized from requested_bytes; a smaller request keeps it, a larger one
    // replaces it with a new array (the old id is gone).
    const scratch = { label: 'cudnn-scratch', placement: 'PLACEMENT_DEVICE', data_type: 'DATA_TYPE_UINT8', size_source: 'request bytes', algorithm: '', fell_back: false };
    expect(r.cudnn.first).toMatchObject({ ...scratch, byte_size: 8 * MiB, workspace_bytes: 8 * MiB, grew: false });
    expect(r.cudnn.smaller).toMatchObject({ ...scratch, byte_size: 8 * MiB, workspace_bytes: 1 * MiB, grew: false });
    expect(r.cudnn.larger).toMatchObject({ ...scratch, byte_size: 12 * MiB, workspace_bytes: 12 * MiB, grew: true });
    expect(r.cudnn).toMatchObject({ smaller_same_array: true, larger_new_array: true });
    expect([r.cudnn_old_scratch_error[0], r.cudnn_old_scratch_error[2]]).toEqual(['NOT_FOUND', 'ARRAY_NOT_FOUND']);
    expect(r.cudnn_bad_stride_error[0]).toBe('INVALID_ARGUMENT');
    expect(r.cudnn_bad_stride_error[1]).toContain('convolution.strides[1]');
    // DestroyWorkspace frees its memory; CloseLease frees the rest: 3 ScopeOut arrays and the scratch.
    expect(r.destroyed_held_bytes).toBe(0);
    expect(r.lease_arrays_left).toBe(4);
    expect(r.close_freed_bytes).toBe(r.lease_held_bytes);
  }, 60_000);

  it('gets a long error message that is mostly not ASCII with its code and ErrorInfo (grpc core takes 8 KiB of headers)', async () => {
    const r = await scenario('long_error', daemon!.tcpAddress);
    // ND4J's leaked-pointer message names the array's workspace and the three still open, 256 CJK
    // characters each; percent-encoded they alone passed 8 KiB, and grpcio ended the call
    // RESOURCE_EXHAUSTED "received initial metadata size exceeds limit" with no ErrorInfo.
    expect(r.read_error).toMatchObject({
      code: 'FAILED_PRECONDITION',
      reason: 'ARRAY_OUT_OF_SCOPE',
      domain: 'tensormem.dev',
      workspace_name_whole: true,
      details_head: 'Cannot read array',
      cut: true,
      // What grpcio-status's rpc_status.from_call checks: without it, from_call raises ValueError.
      status_code_is_call_code: true,
      status_message_is_details: true,
    });
    expect(r.read_error.names_in_details).toBeGreaterThanOrEqual(1);
  }, 60_000);

  it('keeps a lease opened with a tenant token past its TTL over KeepAlive and RenewLease; a killed process with release_on_disconnect loses its lease', async () => {
    const token = randomBytes(32).toString('hex');
    const tenants = writeTenantsFile(tenantsYaml({ 'team-py': token }));
    const tenantDaemon = await startDaemon(['--tenants', tenants]);
    try {
      const r = await scenario('keepalive', tenantDaemon.tcpAddress, { TENSORMEM_INTEROP_TENANT_TOKEN: token });
      expect(r.open_without_token.slice(0, 1)).toEqual(['UNAUTHENTICATED']);
      expect(r).toMatchObject({ tenant: 'team-py', ttl_seconds: 2 });
      // 4.5 s of KeepAlive every 0.5 s held a 2 s lease; each reply moved expires_at on.
      expect(r.alive_after_keepalive).toBe(true);
      expect(r.keepalive_replies).toBeGreaterThanOrEqual(5);
      expect(r.expiries_increase).toBe(true);
      // The clean stop (release_on_disconnect false with no_renew, then half-close) ends the stream OK and keeps the lease.
      expect(r.keepalive_end).toBe('OK');
      expect(r.alive_after_clean_stop).toBe(true);
      expect(r.renewed_ttl_seconds).toBe(60);
      expect(r.alive_after_renew).toBe(true);
      expect(r.renew_with_tenant_token.slice(0, 1)).toEqual(['UNAUTHENTICATED']);
      // SIGKILL: no half-close, so the daemon closed the lease as the stream dropped.
      expect(r.child_exit).toBe(-9);
      expect(r.child_lease_after_kill[0]).toBe('UNAUTHENTICATED');
      expect(r.child_lease_after_kill[2]).toBe('LEASE_EXPIRED');
      expect(r.child_lease_after_kill[3]).toMatchObject({ close_reason: 'disconnected' });
      expect(r.close_freed_bytes).toBeGreaterThanOrEqual(4096);
    } finally {
      expect(await tenantDaemon.stop(), 'tenants daemon exit code after SIGTERM').toBe(0);
    }
  }, 60_000);

  it('leaves no shared-memory name behind, and the daemon stops cleanly', async () => {
    const prefix = `tensormem-${daemon!.child.pid}-`;
    expect(readdirSync('/dev/shm').filter((name) => name.startsWith(prefix))).toEqual([]);
    const exitCode = await daemon!.stop();
    expect(exitCode, 'tensormemd exit code after SIGTERM').toBe(0);
  }, 30_000);
});
