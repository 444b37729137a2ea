import { describe, expect, it } from 'vitest';
import { status } from '@grpc/grpc-js';
import { type ErrorKind, OutOfMemoryError, PhysicalMemoryLimitError, TensormemError, invalidArgument, notFound } from '../../src/errors';
import { STATUS_BY_KIND, toServiceError } from '../../src/service/errors';
import { errorInfoOf } from '../../src/rpc-status';
import { formatIec } from '../../src/units';
import { PhysicalMemoryGuard } from '../../src/memory/physical-memory-guard';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

describe('out-of-memory messages say the numbers (DESIGN.md §5)', () => {
  it('formats the design example exactly', () => {
    const error = new OutOfMemoryError({
      memory: 'DEVICE',
      device: 0,
      requestedBytes: GiB,
      capName: 'pool cap (maxbytes)',
      capBytes: 14 * GiB,
      usedBytes: Math.round(13.6 * GiB),
      largestFreeBlockBytes: 256 * MiB,
    }).withTenant({ name: 'a', quotaBytes: 8 * GiB, usedBytes: Math.round(7.9 * GiB) });
    expect(error.message).toBe(
      "Can't allocate [DEVICE] memory: 1073741824 bytes (1.00 GiB) on device 0: pool cap (maxbytes) 15032385536 bytes (14.00 GiB), " +
        'used 14602888806 bytes (13.60 GiB), largest free block 268435456 bytes (256.00 MiB); tenant "a" quota 8589934592 bytes (8.00 GiB), ' +
        'used 8482560410 bytes (7.90 GiB). Try: free arrays, a smaller batch, workspaces, or a larger --maxbytes.',
    );
    expect(error.reason).toBe('DEVICE_OUT_OF_MEMORY');
    expect(error.metadata.tenant_quota_bytes).toBe(String(8 * GiB));
  });

  it('maps to RESOURCE_EXHAUSTED with an ErrorInfo trailer', () => {
    const mapped = toServiceError(new OutOfMemoryError({ memory: 'HOST', requestedBytes: 100, capName: 'host cap (host-maxbytes)', capBytes: 50, usedBytes: 0, largestFreeBlockBytes: 0 }));
    expect(mapped.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(mapped.details).toContain('--host-maxbytes');
    const info = errorInfoOf(mapped.metadata);
    expect(info).toEqual({ reason: 'HOST_OUT_OF_MEMORY', domain: 'tensormem.dev', metadata: { requested_bytes: '100', cap_bytes: '50', used_bytes: '0', largest_free_block_bytes: '0' } });
  });

  it('maps every kind of error to the gRPC status of the same name, with its reason in the trailer', () => {
    const kinds: ErrorKind[] = ['INVALID_ARGUMENT', 'OUT_OF_RANGE', 'NOT_FOUND', 'ALREADY_EXISTS', 'FAILED_PRECONDITION', 'RESOURCE_EXHAUSTED', 'UNAUTHENTICATED', 'PERMISSION_DENIED', 'UNAVAILABLE', 'INTERNAL', 'CANCELLED', 'DEADLINE_EXCEEDED'];
    expect(Object.keys(STATUS_BY_KIND).sort()).toEqual([...kinds].sort());
    for (const kind of kinds) {
      const mapped = toServiceError(new TensormemError(kind, 'SHUTTING_DOWN', `a ${kind}`));
      expect(mapped.code, kind).toBe(status[kind]);
      expect(mapped.details, kind).toBe(`a ${kind}`);
      expect(errorInfoOf(mapped.metadata)?.reason, kind).toBe('SHUTTING_DOWN');
    }
  });

  it('maps bad input to INVALID_ARGUMENT and anything unexpected to INTERNAL', () => {
    expect(toServiceError(invalidArgument('shape[0]', 'a non-negative integer', -1)).code).toBe(status.INVALID_ARGUMENT);
    const internal = toServiceError(new TypeError('boom'));
    expect(internal.code).toBe(status.INTERNAL);
    expect(errorInfoOf(internal.metadata)).toBeUndefined();
  });

  it('quotes a long client string by its start and length, and bounds what goes in the trailers whatever the message', () => {
    const id = 'x'.repeat(200_000);
    const missing = notFound('array', id);
    expect(missing.message).toBe(`array "${'x'.repeat(64)}"… (200000 characters) not found`);
    expect(missing.metadata.array_id).toBe(`${'x'.repeat(64)}…`);
    expect(invalidArgument('page_token', 'a token from a previous page', 'p'.repeat(300)).message).toBe(`Expected a token from a previous page for page_token but received "${'p'.repeat(64)}"… (300 characters)`);
    // At the limit it is quoted whole.
    expect(notFound('array', 'y'.repeat(256)).message).toBe(`array "${'y'.repeat(256)}" not found`);

    const huge = toServiceError(new TensormemError('NOT_FOUND', 'ARRAY_NOT_FOUND', 'z'.repeat(100_000), { array_id: 'w'.repeat(10_000), short: 'kept' }));
    expect(huge.details).toBe(`${'z'.repeat(2048)}… (cut from 100000 characters)`);
    expect(errorInfoOf(huge.metadata)).toEqual({ reason: 'ARRAY_NOT_FOUND', domain: 'tensormem.dev', metadata: { array_id: `${'w'.repeat(256)}… (cut from 10000 characters)`, short: 'kept' } });
    expect(toServiceError(new TypeError('q'.repeat(5000))).details).toBe(`internal error: ${'q'.repeat(2048 - 'internal error: '.length)}… (cut from 5016 characters)`);
  });

  it('cuts no surrogate pair in two: the message goes through encodeURI (grpc-message), quoted and clipped strings stay well-formed', () => {
    // An emoji (two UTF-16 units) across each limit, whichever unit the limit falls on.
    for (const pad of [0, 1]) {
      const message = `${'m'.repeat(2047 - pad)}${'\u{1F600}'.repeat(10)}`;
      const value = `${'v'.repeat(255 - pad)}${'\u{1F600}'.repeat(10)}`;
      const mapped = toServiceError(new TensormemError('INVALID_ARGUMENT', 'INVALID_ARGUMENT', message, { field: value }));
      // grpc-js sends details as encodeURI(details): a lone surrogate threw there and the call ended UNKNOWN "Unknown error".
      expect(() => encodeURI(mapped.details!)).not.toThrow();
      expect(mapped.details!.isWellFormed()).toBe(true);
      expect(mapped.details!.startsWith(message.slice(0, 2047 - pad))).toBe(true);
      expect(errorInfoOf(mapped.metadata)!.metadata.field.isWellFormed()).toBe(true);
      const id = `${'i'.repeat(63 - pad)}${'\u{1F600}'.repeat(200)}`;
      expect(notFound('array', id).metadata.array_id.isWellFormed()).toBe(true);
      expect(notFound('array', id).message).not.toMatch(/\\ud83d/);
    }
  });

  it('keeps an error within what a grpc core client (Python, C++) takes in one header list (8 KiB), however little of the message is ASCII', () => {
    // RFC 7541 §4.1: a header field counts its name, its value and 32. grpc-js sends details as
    // encodeURI(details) (a CJK character: 9 bytes) and the -bin trailer in base64. Python's grpcio
    // refused a longer list as RESOURCE_EXHAUSTED "received initial metadata size exceeds limit", the
    // error and its ErrorInfo lost (three 256-character CJK workspace names in ND4J's leaked-pointer message).
    const fieldSize = (name: string, value: string) => name.length + value.length + 32;
    const budget = 7 * 1024; // the last KiB of the 8 for grpc-status, :status, content-type, date
    const workspaceName = '工'.repeat(256);
    for (const message of ['工'.repeat(5000), `${'x'.repeat(1500)}${'工'.repeat(600)}`, ' "\n'.repeat(2000), '\u{1F600}'.repeat(2000)]) {
      const mapped = toServiceError(new TensormemError('FAILED_PRECONDITION', 'ARRAY_OUT_OF_SCOPE', message, { workspace_name: workspaceName }));
      const bin = mapped.metadata!.get('grpc-status-details-bin')[0] as Buffer;
      const size = fieldSize('grpc-message', encodeURI(mapped.details!)) + fieldSize('grpc-status-details-bin', bin.toString('base64'));
      expect(size, `trailers of a ${message.length}-character message`).toBeLessThanOrEqual(budget);
      const head = mapped.details!.replace(/… \(cut from \d+ characters\)$/, '');
      expect(mapped.details).toBe(`${head}… (cut from ${message.length} characters)`);
      expect(head.length).toBeGreaterThan(100);
      expect(message.startsWith(head)).toBe(true);
      expect(mapped.details!.isWellFormed()).toBe(true);
      expect(errorInfoOf(mapped.metadata)).toEqual({ reason: 'ARRAY_OUT_OF_SCOPE', domain: 'tensormem.dev', metadata: { workspace_name: workspaceName } });
    }
    // Not an ErrorInfo error: grpc-message alone.
    const internal = toServiceError(new Error('工'.repeat(5000)));
    expect(fieldSize('grpc-message', encodeURI(internal.details!))).toBeLessThanOrEqual(budget);
    expect(internal.details).toMatch(/^internal error: 工+… \(cut from 5016 characters\)$/);
    // ASCII up to the 2048 characters still goes out whole.
    const ascii = `${'word '.repeat(409)}end`;
    expect(toServiceError(new TensormemError('NOT_FOUND', 'ARRAY_NOT_FOUND', ascii, { array_id: 'a'.repeat(256) })).details).toBe(ascii);
  });

  it('formats IEC units', () => {
    expect(formatIec(0)).toBe('0 B');
    expect(formatIec(1023)).toBe('1023 B');
    expect(formatIec(1536)).toBe('1.50 KiB');
    expect(formatIec(14 * GiB)).toBe('14.00 GiB');
  });
});

describe('PhysicalMemoryGuard (--maxphysicalbytes)', () => {
  it('passes a request that fits and refuses one that would pass the cap, after asking for relief', () => {
    let resident = 900;
    let reliefCalls = 0;
    const guard = new PhysicalMemoryGuard(1000, () => reliefCalls++, () => resident);
    guard.check(100);
    expect(reliefCalls).toBe(0);
    expect(() => guard.check(101)).toThrowError(PhysicalMemoryLimitError);
    expect(reliefCalls).toBe(2);
    try {
      guard.check(101);
    } catch (error) {
      expect((error as Error).message).toContain('physicalBytes 900 bytes (900 B) + request 101 bytes (101 B) > maxPhysicalBytes 1000 bytes (1000 B)');
    }
    resident = 950;
    expect(() => guard.check(60)).toThrowError(/maxPhysicalBytes/);
  });

  it('succeeds when relief brings the resident set down', () => {
    let resident = 2000;
    const guard = new PhysicalMemoryGuard(1000, () => (resident = 100), () => resident);
    guard.check(500);
    expect(resident).toBe(100);
  });

  it('is off at 0, as in JavaCPP', () => {
    new PhysicalMemoryGuard(0, () => {}, () => 10 ** 12).check(10 ** 12);
  });
});
