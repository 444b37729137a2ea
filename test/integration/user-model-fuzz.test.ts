/**
 * Model-based fuzz of the daemon as users drive it: three tenants with quotas (a tenants file, small
 * --maxbytes) drive one daemon process through the typed client with seeded random sequences of
 * OpenLease / CloseLease, AllocateArray of every placement (DEVICE, HOST_ONLY, exportable, mirrored on
 * host access), writes and reads over gRPC and the HTTP data plane, ExportArray, DuplicateArray,
 * SyncArray, workspaces (every learning, spill and reset policy; enter, leave, borrow, scope out,
 * destroy), wait_for_memory with deadlines and aborts, ReadArray / WriteArray streams cancelled
 * mid-way, a client process killed mid-transfer, another tenant's ids and bad input.
 *
 * The model holds every detached array: its bytes (exact: --scrub on makes new arrays zero; unknown
 * after a cut write), its block (256-byte rounded in a pool, page-rounded in a region of its own) and
 * whether it has a host mirror. After every step: each answer's status code is one the call may give
 * (never INTERNAL or UNKNOWN), another tenant's ids answer NOT_FOUND exactly, bad input changes
 * nothing, and per tenant GetMemoryInfo's used bytes are the model's arrays plus its workspaces'
 * held_bytes (and never past its quotas); when a tenant's last lease ends its used bytes are 0, and
 * whenever no lease is open /dev/shm holds no region of the daemon.
 *
 * Not driven here: MMAP workspaces, cuDNN scratch, lease expiry, admin eviction, SIGHUP reloads
 * (user-model-lifecycle-fuzz.test.ts drives them with this harness).
 * TENSORMEM_USER_FUZZ_SEED (first seed, default 1), _SEEDS (how many, default 1), _STEPS (default 120),
 * _LOG (a file name prefix for each seed's step log). The harness is test/helpers/user-model.ts.
 */
import { fuzzSeeds, Harness } from '../helpers/user-model';

fuzzSeeds('user-model fuzz', 'TENSORMEM_USER_FUZZ', 120, (seed) => new Harness(seed));
