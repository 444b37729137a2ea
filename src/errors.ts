/**
 * Domain errors, typed at the bottom of the stack. Every layer below src/service throws only these;
 * src/service/errors.ts maps them to gRPC status codes and google.rpc.ErrorInfo once, and
 * src/dataplane maps the same `kind` to HTTP statuses.
 */
import { formatBytes } from './units';

/** The canonical error categories (a subset of google.rpc.Code) a domain error falls into. */
export type ErrorKind =
  | 'INVALID_ARGUMENT'
  | 'OUT_OF_RANGE'
  | 'NOT_FOUND'
  | 'ALREADY_EXISTS'
  | 'FAILED_PRECONDITION'
  | 'RESOURCE_EXHAUSTED'
  | 'UNAUTHENTICATED'
  | 'PERMISSION_DENIED'
  | 'UNAVAILABLE'
  | 'INTERNAL'
  | 'CANCELLED'
  | 'DEADLINE_EXCEEDED';

/**
 * google.rpc.ErrorInfo reasons (UPPER_SNAKE_CASE, stable: clients switch on them): every reason the
 * daemon sends, over gRPC or in a data plane error body. A list as well as a type, so that a test can
 * check that a reason on the wire is one of them (the data plane's NOT_FOUND, MALFORMED_REQUEST and
 * REQUEST_HEAD_TOO_LARGE were sent without being listed, and a client's ErrorReason knew none of them).
 */
export const ERROR_REASONS = [
  'DEVICE_OUT_OF_MEMORY',
  'HOST_OUT_OF_MEMORY',
  'PHYSICAL_MEMORY_LIMIT',
  'QUOTA_EXCEEDED',
  'MMAP_LIMIT',
  'MAPPING_LIMIT',
  'HEAP_LIMIT',
  'WORKSPACE_FULL',
  'ARRAY_OUT_OF_SCOPE',
  'LEASE_EXPIRED',
  'LEASE_NOT_FOUND',
  'ARRAY_NOT_FOUND',
  'WORKSPACE_NOT_FOUND',
  'TENANT_NOT_FOUND',
  /** The data plane: a path that is no endpoint of it (not an array's: that is ARRAY_NOT_FOUND). */
  'NOT_FOUND',
  'INVALID_SHAPE',
  'INVALID_ARGUMENT',
  'OUT_OF_RANGE',
  'ALREADY_EXISTS',
  'FAILED_PRECONDITION',
  'UNAUTHENTICATED',
  'PERMISSION_DENIED',
  'BACKEND_ERROR',
  'SHUTTING_DOWN',
  'DEVICE_LOST',
  'TOO_MANY_CONNECTIONS',
  'TOO_MANY_STREAMS',
  /** --max-tenant-waits: a tenant's wait_for_memory calls fill its cap. */
  'TOO_MANY_WAITS',
  /** One array has the most copies in flight it may count (reads, writes, DuplicateArray, data plane transfers): 131,071. */
  'TOO_MANY_COPIES',
  'CHECKSUM_MISMATCH',
  'PRECONDITION_FAILED',
  'MESSAGE_TOO_LARGE',
  /** The data plane: a request head it cannot parse (HTTP 400), or one over its 16 KiB limit (HTTP 431; 414 when the request line alone is). */
  'MALFORMED_REQUEST',
  'REQUEST_HEAD_TOO_LARGE',
  /** The data plane: a request whose Transfer-Encoding names a coding besides chunked (gzip, chunked), which it does not decode (HTTP 501). */
  'UNSUPPORTED_TRANSFER_CODING',
  'INTERNAL',
] as const;

export type ErrorReason = (typeof ERROR_REASONS)[number];

export class TensormemError extends Error {
  constructor(
    readonly kind: ErrorKind,
    readonly reason: ErrorReason,
    message: string,
    /** String-valued facts for ErrorInfo.metadata (bytes as decimal strings). */
    readonly metadata: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'TensormemError';
  }
}

/** A field of a request failed validation: the message names the field and the value. */
export function invalidArgument(field: string, expected: string, received: unknown, reason: ErrorReason = 'INVALID_ARGUMENT'): TensormemError {
  return new TensormemError('INVALID_ARGUMENT', reason, `Expected ${expected} for ${field} but received ${describe(received)}`, {
    field,
  });
}

export function outOfRange(field: string, message: string): TensormemError {
  return new TensormemError('OUT_OF_RANGE', 'OUT_OF_RANGE', `${field}: ${message}`, { field });
}

export function notFound(what: 'lease' | 'array' | 'workspace', id: string): TensormemError {
  const reason: ErrorReason = what === 'lease' ? 'LEASE_NOT_FOUND' : what === 'array' ? 'ARRAY_NOT_FOUND' : 'WORKSPACE_NOT_FOUND';
  return new TensormemError('NOT_FOUND', reason, `${what} ${quoted(id)} not found`, { [`${what}_id`]: clipped(id) });
}

/**
 * `error`, a refusal of host memory for a device array's host mirror, saying so: a trainer that read a
 * device array was refused "Can't allocate [HOST] memory … for tenant", which named nothing it had
 * asked for. The refusal is this allocation's own, so it is told in place and keeps its class (an
 * OutOfMemoryError stays one, with its facts). Other errors as they are.
 */
export function mirrorRefusal(error: unknown, arrayId: string, workspaceName?: string): unknown {
  if (!(error instanceof TensormemError) || error.kind !== 'RESOURCE_EXHAUSTED') return error;
  if (workspaceName !== undefined) {
    // An attached array's mirror is a range of its FULL workspace's host side: the bytes refused are that
    // side's buffer (its whole size, taken at the first mirror) or a spill past it, not the array's size.
    error.message +=
      ` The [HOST] memory is for the host mirror of device array ${arrayId}, attached to workspace ${quoted(workspaceName)}: its mirror is taken from the ` +
      `workspace's host side (the buffer it takes at its first mirror, or a spill past it) when the array is first read (ReadArray, a data plane GET) ` +
      `or synced to the host; that side counts against --host-maxbytes and the tenant's host quota.`;
    error.metadata.mirror_of = arrayId;
    return error;
  }
  // A region refused (MAPPING_LIMIT, or the tenant's max_mapped_regions): what an exportable array's mirror counts against is that, not bytes.
  const counts =
    error.metadata.max_mapped_regions !== undefined
      ? "an exportable array's mirror is a mapped region of its own, counted against --max-mapped-regions and the tenant's max_mapped_regions"
      : "mirrors count against --host-maxbytes and the tenant's host quota";
  error.message +=
    ` The [HOST] memory is the host mirror of device array ${arrayId}: its copy in host memory, made when it is first read (ReadArray, a data plane GET), ` +
    `synced to the host, exported on its host side, or allocated under --mirror eager; ${counts}.`;
  error.metadata.mirror_of = arrayId;
  return error;
}

/** Longest client-given string a message quotes whole (labels and names are at most 256). */
const QUOTED_MAX_CHARACTERS = 256;
/** How much of a longer one it shows. */
const QUOTED_HEAD_CHARACTERS = 64;

/**
 * A client-given string as a message quotes it: JSON, and past QUOTED_MAX_CHARACTERS its start and its
 * length. Quoted whole, a 200,000-character array id went into the status message and its ErrorInfo
 * twice over, the trailers passed what the client takes, and the call hung until its deadline.
 */
export function quoted(text: string): string {
  return text.length <= QUOTED_MAX_CHARACTERS ? JSON.stringify(text) : `${JSON.stringify(headOf(text, QUOTED_HEAD_CHARACTERS))}… (${text.length} characters)`;
}

/** A client-given string as ErrorInfo metadata carries it: whole up to QUOTED_MAX_CHARACTERS, else its start and "…". */
export function clipped(text: string): string {
  return text.length <= QUOTED_MAX_CHARACTERS ? text : `${headOf(text, QUOTED_HEAD_CHARACTERS)}…`;
}

/**
 * The first `maxUnits` UTF-16 code units of `text`, one fewer where the cut would split a surrogate
 * pair (an emoji): a lone surrogate is no Unicode. grpc-js sends the status message through
 * encodeURI, which throws on one (the call ended UNKNOWN "Unknown error", its message lost), and
 * protobuf writes one as bytes that are not UTF-8, which stricter clients refuse to decode.
 */
export function headOf(text: string, maxUnits: number): string {
  if (text.length <= maxUnits) return text;
  const last = text.charCodeAt(maxUnits - 1);
  return text.slice(0, last >= 0xd800 && last <= 0xdbff ? maxUnits - 1 : maxUnits);
}

export function failedPrecondition(message: string, reason: ErrorReason = 'FAILED_PRECONDITION'): TensormemError {
  return new TensormemError('FAILED_PRECONDITION', reason, message);
}

/** How tensormemctl sends a token, for the messages that ask for a missing one (every client reads them; tensormemctl's users most). */
export const TENSORMEMCTL_TOKEN = 'tensormemctl: --token or $TENSORMEM_TOKEN';

export function unauthenticated(message: string): TensormemError {
  return new TensormemError('UNAUTHENTICATED', 'UNAUTHENTICATED', message);
}

export type MemoryKind = 'DEVICE' | 'HOST';

/** The facts an out-of-memory error states; every number in bytes. */
export interface OutOfMemoryFacts {
  memory: MemoryKind;
  requestedBytes: number;
  /** Device index for DEVICE memory. */
  device?: number;
  /** Which cap refused, or under backendRefused the cap of the pool the backend refused: "pool cap (maxbytes)", "host cap (host-maxbytes)". */
  capName: string;
  capBytes: number;
  usedBytes: number;
  largestFreeBlockBytes: number;
  tenant?: { name: string; quotaBytes: number; usedBytes: number };
  /** Backend detail, e.g. the CUDA error text, when the backend itself refused. */
  backendDetail?: string;
  /**
   * The backend itself refused (cudaMalloc, cudaHostAlloc, the system's RAM, a full /dev/shm), not a cap
   * of the daemon: backendDetail says why, and the advice is not a larger cap. The seed's advice for a
   * CUDA out of memory is "Verify `maxbytes` is not set higher than available VRAM".
   */
  backendRefused?: boolean;
  /** Bytes of `usedBytes` (and the tenant's) that the request gives back before it takes its own: GivenBack. */
  givenBack?: GivenBack;
  /**
   * Chunk bytes the pool holds (reserved), when they, not its used bytes, left no room under the cap:
   * no free block fits the request and a new chunk for it would pass the cap.
   */
  reservedBytes?: number;
  /**
   * The requesting lease's cuDNN scratch on this device, when it holds one: the seed's advice for a CUDA
   * out of memory is "Switch to NO_WORKSPACE cuDNN algo mode ... as PREFER_FASTEST allocates large workspace buffers".
   */
  cudnnScratch?: { arrayId: string; bytes: number };
}

/**
 * What a request gives back before it takes its own memory, counted as free by the check that refused
 * it (a cuDNN scratch replaced by a larger one): its refusal states the used bytes as GetMemoryInfo
 * shows them and this apart, so that the numbers agree with the daemon's other reports.
 */
export interface GivenBack {
  bytes: number;
  /** What it is, e.g. "the cuDNN scratch it replaces". */
  what: string;
}

function givenBackText(givenBack: GivenBack | undefined): string {
  return givenBack && givenBack.bytes > 0 ? `; ${givenBack.what}, ${formatBytes(givenBack.bytes)} of the used bytes, is given back first` : '';
}

/** Out of memory: RESOURCE_EXHAUSTED with a message in the form of DESIGN.md §5. */
export class OutOfMemoryError extends TensormemError {
  constructor(readonly facts: OutOfMemoryFacts) {
    super('RESOURCE_EXHAUSTED', facts.memory === 'DEVICE' ? 'DEVICE_OUT_OF_MEMORY' : 'HOST_OUT_OF_MEMORY', formatOutOfMemory(facts), oomMetadata(facts));
    this.name = 'OutOfMemoryError';
  }

  /** The same error with the tenant's quota and usage added to the message. */
  withTenant(tenant: { name: string; quotaBytes: number; usedBytes: number }): OutOfMemoryError {
    return new OutOfMemoryError({ ...this.facts, tenant });
  }
}

function formatOutOfMemory(f: OutOfMemoryFacts): string {
  const where = f.memory === 'DEVICE' ? ` on device ${f.device ?? 0}` : '';
  let message =
    `Can't allocate [${f.memory}] memory: ${formatBytes(f.requestedBytes)}${where}: ` +
    `${f.capName} ${formatBytes(f.capBytes)}, used ${formatBytes(f.usedBytes)}, largest free block ${formatBytes(f.largestFreeBlockBytes)}`;
  if (f.tenant) {
    message += `; tenant "${f.tenant.name}" quota ${formatBytes(f.tenant.quotaBytes)}, used ${formatBytes(f.tenant.usedBytes)}`;
  }
  message += givenBackText(f.givenBack);
  if (f.reservedBytes !== undefined) {
    message += `; no free block fits it, and a new chunk for it would pass the cap: the pool's chunks already reserve ${formatBytes(f.reservedBytes)} of it`;
  }
  if (f.cudnnScratch) {
    message +=
      `; this lease's cuDNN scratch (AcquireCudnnWorkspace) holds ${formatBytes(f.cudnnScratch.bytes)} of the used bytes: ` +
      'CUDNN_ALGO_MODE_NO_WORKSPACE needs none, and FreeArray of it gives it back';
  }
  const flag = f.memory === 'DEVICE' ? '--maxbytes' : '--host-maxbytes';
  if (f.backendRefused) {
    const refuser = f.memory === 'DEVICE' ? 'the device' : 'the system';
    message += `; ${refuser} refused it, not the ${f.memory === 'DEVICE' ? 'pool' : 'host'} cap${f.backendDetail ? `: ${f.backendDetail}` : ''}`;
    const room =
      f.memory === 'DEVICE'
        ? `a ${flag} no higher than the device memory this daemon can have (VRAM less what other processes hold on it: GetMemoryInfo's free_bytes plus the pool's reserved_bytes)`
        : `room on the host (free RAM, /dev/shm for exportable arrays, the locked-memory limit for pinned memory), with ${flag} no higher than what it can give`;
    return `${message}. Try: free arrays, a smaller batch, workspaces, or ${room}.`;
  }
  if (f.backendDetail) message += `; ${f.backendDetail}`;
  return `${message}. Try: free arrays, a smaller batch, workspaces, or a larger ${flag}.`;
}

function oomMetadata(f: OutOfMemoryFacts): Record<string, string> {
  const metadata: Record<string, string> = {
    requested_bytes: String(f.requestedBytes),
    cap_bytes: String(f.capBytes),
    used_bytes: String(f.usedBytes),
    largest_free_block_bytes: String(f.largestFreeBlockBytes),
  };
  if (f.device !== undefined) metadata.device = String(f.device);
  if (f.tenant) {
    metadata.tenant = f.tenant.name;
    metadata.tenant_quota_bytes = String(f.tenant.quotaBytes);
    metadata.tenant_used_bytes = String(f.tenant.usedBytes);
  }
  if (f.givenBack && f.givenBack.bytes > 0) metadata.given_back_bytes = String(f.givenBack.bytes);
  if (f.reservedBytes !== undefined) metadata.reserved_bytes = String(f.reservedBytes);
  if (f.backendRefused) metadata.refused_by = 'backend';
  if (f.cudnnScratch) {
    metadata.cudnn_scratch_bytes = String(f.cudnnScratch.bytes);
    metadata.cudnn_scratch_array_id = f.cudnnScratch.arrayId;
  }
  return metadata;
}

/** A tenant's hard quota would be passed: RESOURCE_EXHAUSTED, reason QUOTA_EXCEEDED, with the numbers. */
export class QuotaExceededError extends TensormemError {
  constructor(
    readonly tenant: string,
    /** MMAP: the tenant's quota.mmap, on the bytes of its MMAP workspace files. */
    memory: MemoryKind | 'MMAP',
    device: number | undefined,
    readonly requestedBytes: number,
    readonly quotaBytes: number,
    readonly usedBytes: number,
    /** What the request takes of the quota: its block, rounded up to the pool's alignment (when more than asked). */
    takesBytes = requestedBytes,
    givenBack?: GivenBack,
  ) {
    const what = memory === 'MMAP' ? `Can't map [MMAP] file` : `Can't allocate ${memory === 'DEVICE' ? `[DEVICE] memory on device ${device ?? 0}` : '[HOST] memory'}`;
    const tries = memory === 'MMAP' ? 'destroy MMAP workspaces, a smaller initial_size, or a larger quota.mmap' : 'free arrays, a smaller batch, workspaces, or a larger quota';
    // The quota counts blocks: a request of 1000 bytes takes 1024 of it (256-byte blocks), so say so.
    const takes = takesBytes > requestedBytes ? ` (it takes ${formatBytes(takesBytes)} of the quota: blocks are rounded up)` : '';
    super(
      'RESOURCE_EXHAUSTED',
      'QUOTA_EXCEEDED',
      `${what}: ${formatBytes(requestedBytes)}${takes} for tenant "${tenant}": quota ${formatBytes(quotaBytes)}, used ${formatBytes(usedBytes)}${givenBackText(givenBack)}. ` +
        `Try: ${tries} in the tenants file.`,
      {
        tenant,
        requested_bytes: String(requestedBytes),
        ...(takesBytes > requestedBytes ? { takes_bytes: String(takesBytes) } : {}),
        quota_bytes: String(quotaBytes),
        used_bytes: String(usedBytes),
        ...(givenBack && givenBack.bytes > 0 ? { given_back_bytes: String(givenBack.bytes) } : {}),
        ...(device !== undefined && memory === 'DEVICE' ? { device: String(device) } : {}),
      },
    );
  }
}

/** MMAP workspace files mapped at once would pass --mmap-maxbytes: RESOURCE_EXHAUSTED, reason MMAP_LIMIT, with the numbers. */
export class MmapLimitError extends TensormemError {
  constructor(readonly requestedBytes: number, readonly mappedBytes: number, readonly maxBytes: number) {
    super(
      'RESOURCE_EXHAUSTED',
      'MMAP_LIMIT',
      `Can't map [MMAP] file: ${formatBytes(requestedBytes)}: mmap cap (mmap-maxbytes) ${formatBytes(maxBytes)}, mapped ${formatBytes(mappedBytes)}. ` +
        `Try: destroy MMAP workspaces, a smaller initial_size, or a larger --mmap-maxbytes.`,
      { requested_bytes: String(requestedBytes), used_bytes: String(mappedBytes), cap_bytes: String(maxBytes) },
    );
  }
}

/**
 * A new memory mapping of the daemon (an exportable array's shared-memory region, an MMAP workspace's
 * file) would pass --max-mapped-regions: RESOURCE_EXHAUSTED, reason MAPPING_LIMIT, with the numbers.
 */
export class MappingLimitError extends TensormemError {
  constructor(readonly what: string, readonly mappedRegions: number, readonly maxRegions: number) {
    super(
      'RESOURCE_EXHAUSTED',
      'MAPPING_LIMIT',
      `Can't map ${what}: the daemon holds ${mappedRegions} mapped regions (exported arrays' shared-memory regions and MMAP workspaces), its cap (max-mapped-regions) is ${maxRegions}. ` +
        `Try: free exported arrays, destroy MMAP workspaces, or export fewer, larger arrays.`,
      { mapped_regions: String(mappedRegions), max_mapped_regions: String(maxRegions) },
    );
  }
}

/** The daemon's live V8 heap is above the share of its limit that HeapGuard allows: no new arrays, leases or workspaces. */
export class HeapLimitError extends TensormemError {
  /** `share`: refused at the fair-share line, its tenant holding more than its share of the daemon's objects (HeapGuard). */
  /**
   * `costBytes`: what the refused call would have kept of the heap (its estimate). Said apart, because
   * the live bytes alone may be under the line that refused it ("80.00 MiB live … refused above 80.00 MiB").
   */
  constructor(
    readonly liveBytes: number,
    readonly limitBytes: number,
    readonly thresholdBytes: number,
    share?: { tenant: string; heldBytes: number; totalBytes: number; tenants: number },
    readonly costBytes = 0,
  ) {
    super(
      'RESOURCE_EXHAUSTED',
      'HEAP_LIMIT',
      `The daemon's heap is nearly full: ${formatBytes(liveBytes)} live of its ${formatBytes(limitBytes)} limit` +
        (costBytes > 0 ? `, and this call would keep about ${formatBytes(costBytes)} more` : '') +
        ` (new arrays, leases and workspaces are refused above ${formatBytes(thresholdBytes)}` +
        (share
          ? ` for tenant "${share.tenant}", whose arrays, leases and workspaces hold about ${formatBytes(share.heldBytes)} of the ${formatBytes(share.totalBytes)} that ${share.tenants} tenants' hold, more than its fair share; the others' are refused only further up). `
          : '). ') +
        `Try: free arrays (each costs the daemon about 250 B of heap, whatever its size) or close leases, or run tensormemd under node --max-old-space-size=MiB.`,
      {
        heap_live_bytes: String(liveBytes),
        heap_limit_bytes: String(limitBytes),
        heap_threshold_bytes: String(thresholdBytes),
        ...(costBytes > 0 ? { heap_cost_bytes: String(costBytes) } : {}),
        ...(share ? { tenant: share.tenant, tenant_heap_bytes: String(share.heldBytes), tenants_heap_bytes: String(share.totalBytes) } : {}),
      },
    );
  }
}

/** The process resident set would pass --maxphysicalbytes (JavaCPP's maxPhysicalBytes check). */
export class PhysicalMemoryLimitError extends TensormemError {
  constructor(readonly requestedBytes: number, readonly physicalBytes: number, readonly maxPhysicalBytes: number) {
    super(
      'RESOURCE_EXHAUSTED',
      'PHYSICAL_MEMORY_LIMIT',
      `Physical memory usage is too high: physicalBytes ${formatBytes(physicalBytes)} + request ${formatBytes(requestedBytes)} > ` +
        `maxPhysicalBytes ${formatBytes(maxPhysicalBytes)}. Try: free arrays, or a larger --maxphysicalbytes.`,
      { requested_bytes: String(requestedBytes), physical_bytes: String(physicalBytes), max_physical_bytes: String(maxPhysicalBytes) },
    );
  }
}

/**
 * A byte count or position for a message: the number, or "about 1.845e+19 (past 2^53)" for an integer
 * that is not safe. uint64 and int64 fields arrive as Numbers (proto/loader-options.json), rounded
 * past 2^53: printed as they are, they would be numbers the client never sent.
 */
export function describeCount(value: number): string {
  return Number.isInteger(value) && !Number.isSafeInteger(value) ? `about ${value.toExponential(3)} (past ${value < 0 ? '-' : ''}2^53)` : String(value);
}

/**
 * A received value as refusals show it: strings quoted, arrays and plain objects spelled out (one that
 * holds itself, as a caller's options object may, shows "[Circular]" there instead of overflowing the
 * stack: the refusal would have become a RangeError naming nothing).
 */
export function describe(value: unknown): string {
  return describeWithin(value, []);
}

/** describe(value) where `within` are the arrays and objects it lies in. */
function describeWithin(value: unknown, within: object[]): string {
  if (typeof value === 'number' && Number.isInteger(value) && !Number.isSafeInteger(value)) return `a value ${describeCount(value)}`;
  if (typeof value === 'string') return quoted(value);
  if (typeof value === 'bigint') return `${value}`;
  if (value !== null && typeof value === 'object' && within.includes(value)) return '[Circular]';
  if (Array.isArray(value)) return `[${value.map((item) => describeWithin(item, [...within, value])).join(', ')}]`;
  // A plain object spelled out, unless it says how to show itself (config.ts's received values do).
  if (value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype && !Object.hasOwn(value, 'toString')) {
    return `{${Object.entries(value).map(([key, item]) => `${key}: ${describeWithin(item, [...within, value])}`).join(', ')}}`;
  }
  return String(value);
}
