/**
 * Backpressure for one device: allocations that asked to wait are queued and retried whenever device
 * memory is freed. Tenants are served in turn (round robin), each tenant's requests first come first
 * served, and a request that still does not fit does not hold up other tenants' smaller ones.
 * A request's place in its tenant's order is fixed when it is made: one tried at once (nothing waited)
 * holds it while that first try is under way, so the tenant's later requests queue behind it.
 * A waiter leaves the queue when served, when its deadline passes (DEADLINE_EXCEEDED carrying the last
 * out-of-memory message) or when it is cancelled; nothing of it remains, and when it was the head of its
 * tenant's list the queue is drained again, so the request behind it is tried at once.
 */
import { OutOfMemoryError, OutOfMemoryFacts, TensormemError } from '../errors';
import { setLongTimeout } from '../long-timeout';

interface Waiter {
  tenant: string;
  /** `retry`: the request was tried (and refused) before, so a refusal now is not a new failed request. */
  attempt: (retry: boolean) => Promise<unknown>;
  /** Whether attempt has run once already. */
  tried: boolean;
  /** Gives back what a late success got, when the waiter had already timed out or been cancelled. */
  discard: (value: unknown) => void;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
  /** The last refusal of its attempts; none while it has waited behind its tenant's earlier requests untried. */
  lastRefusal: OutOfMemoryError | undefined;
  /** The request's bytes, for the refusal of a waiter never tried. */
  requestedBytes: number;
  /**
   * Its first attempt, made by run() when nothing waited, has not come back yet: it heads its tenant's
   * list (its tenant's later requests wait behind it) but does not wait yet (no deadline, no handle,
   * not in `size`, not tried by drain, not failed by failAll).
   */
  firstAttempt: boolean;
  /** The deadline, armed when the waiter starts waiting. */
  timer: NodeJS.Timeout | undefined;
  /** The list the waiter is in (its tenant's), until it leaves the queue; its neighbours there. */
  list: TenantWaiters | undefined;
  previous: Waiter | undefined;
  next: Waiter | undefined;
}

/**
 * One tenant's waiters in arrival order, linked: a waiter leaves from anywhere in O(1). An array's
 * indexOf and splice made each removal O(waiters of the tenant), and a served or timed-out waiter is
 * its list's head, which splice(0, 1) moves the whole rest of the array for: serving or timing out
 * 60,000 waiters of one tenant held the event loop 3 s (50 µs each, growing with the list).
 */
class TenantWaiters implements Iterable<Waiter> {
  first: Waiter | undefined;
  private last: Waiter | undefined;
  size = 0;

  push(waiter: Waiter): void {
    waiter.list = this;
    waiter.previous = this.last;
    waiter.next = undefined;
    if (this.last) this.last.next = waiter;
    else this.first = waiter;
    this.last = waiter;
    this.size++;
  }

  /** Takes out `waiter`, which is in this list. */
  delete(waiter: Waiter): void {
    if (waiter.previous) waiter.previous.next = waiter.next;
    else this.first = waiter.next;
    if (waiter.next) waiter.next.previous = waiter.previous;
    else this.last = waiter.previous;
    waiter.list = waiter.previous = waiter.next = undefined;
    this.size--;
  }

  *[Symbol.iterator](): Iterator<Waiter> {
    for (let waiter = this.first; waiter; waiter = waiter.next) yield waiter;
  }
}

/** The device pool's figures now, for the deadline of a waiter never tried (MemoryManager gives them). */
export type PoolFacts = () => Pick<OutOfMemoryFacts, 'device' | 'capName' | 'capBytes' | 'usedBytes' | 'largestFreeBlockBytes'>;

export interface WaitHandle {
  /**
   * Removes the waiter; its promise rejects with `error`, or with CANCELLED (the caller went away) when
   * none is given. Nothing happens when the waiter has already left the queue.
   */
  cancel(error?: unknown): void;
}

/** Only device out-of-memory refusals can end by waiting: others' frees make room; quotas do not change by waiting. */
export function isRetryableRefusal(error: unknown): error is OutOfMemoryError {
  return error instanceof OutOfMemoryError && error.facts.memory === 'DEVICE';
}

/**
 * --max-tenant-waits: each tenant's wait_for_memory calls in the queues of every device together, one
 * counted from run() until it leaves its queue (served, refused, timed out, cancelled). A waiting call
 * is a unary call that does not end by itself until --max-wait: each held about 10 KB of the daemon's
 * heap (5,000 of one tenant: 21 -> 71 MiB, RSS 117 -> 188 MiB), not counted in the tenant's heap share,
 * and --max-concurrent-streams and --max-connections alone let one tenant keep about a million of them.
 */
export class TenantWaits {
  private readonly waiting = new Map<string, number>();

  /** `limit`: the most one tenant may have at once; 0 = no cap (nothing is counted). */
  constructor(readonly limit: number) {}

  /** Calls `tenant` has counted now. */
  of(tenant: string): number {
    return this.waiting.get(tenant) ?? 0;
  }

  /** Counts one more call of `tenant`, or refuses it (RESOURCE_EXHAUSTED, TOO_MANY_WAITS) when its calls fill the cap. */
  take(tenant: string): void {
    if (this.limit <= 0) return;
    const now = this.of(tenant);
    if (now >= this.limit) {
      throw new TensormemError(
        'RESOURCE_EXHAUSTED',
        'TOO_MANY_WAITS',
        `tenant "${tenant}" has ${now} AllocateArray calls waiting for device memory (wait_for_memory), the most --max-tenant-waits (${this.limit}) allows: ` +
          'this one was refused without waiting; let some be served, time out or cancel them first, or allocate without wait_for_memory',
        { tenant, waiting_allocations: String(now), max_tenant_waits: String(this.limit) },
      );
    }
    this.waiting.set(tenant, now + 1);
  }

  /** One call of `tenant` left its queue. */
  give(tenant: string): void {
    if (this.limit <= 0) return;
    const left = this.of(tenant) - 1;
    if (left <= 0) this.waiting.delete(tenant);
    else this.waiting.set(tenant, left);
  }
}

export class MemoryWaitQueue {
  /** Tenants in service order; each with its waiters in arrival order. */
  private readonly byTenant = new Map<string, TenantWaiters>();
  /**
   * Waiters in byTenant's lists, and those of them whose first attempt is under way (not waiting yet):
   * `size` is their difference, asked by every wait_for_memory request, where a walk over the tenants'
   * lists made each O(tenants waiting).
   */
  private listed = 0;
  private firstAttempts = 0;
  private draining = false;
  private drainAgain = false;
  /**
   * Set by failAll (the daemon drains): from then on no request waits; one that would (a request_id
   * retry that awaited the call failAll failed, a first attempt under way then) gets failAll's error.
   */
  private failed: { error: unknown } | undefined;

  constructor(
    private readonly poolFacts?: PoolFacts,
    /** Each tenant's waiting calls, shared by the queues of every device (--max-tenant-waits); absent = no cap. */
    private readonly tenantWaits?: TenantWaits,
  ) {}
  /** notifyFreed calls so far, waiters or not: a first attempt refused before a free but waiting only after it must not miss it. */
  private frees = 0;

  /** Waiters waiting now (a first attempt under way is not waiting yet). */
  get size(): number {
    return this.listed - this.firstAttempts;
  }

  /**
   * Runs `attempt` now unless others are already waiting or the tenant's earlier request is still
   * being tried (then queues behind them, for fairness), and again after every free until it succeeds,
   * fails for another reason, or `waitMs` passes (any length: waits beyond setTimeout's 2^31 - 1 ms are
   * armed in steps). Every attempt after the first gets `retry` true (the pool counts one refused
   * request, not one per attempt). The request's place in its tenant's order is taken here, before any
   * await: the tenant's requests are served in the order run() was called for them. A tenant whose
   * calls fill --max-tenant-waits (tenantWaits) is refused here, before anything is tried; a request
   * whose footprint is larger than the pool's cap (poolFacts) is tried once and does not wait. After failAll, a request
   * that would wait gets failAll's error instead.
   */
  async run<T>(
    tenant: string,
    attempt: (retry: boolean) => Promise<T>,
    discard: (value: T) => void,
    waitMs: number,
    onHandle?: (handle: WaitHandle) => void,
    /** The request's bytes: a waiter that times out without having been tried names them. */
    requestedBytes = 0,
    /**
     * What the request takes of the pool's cap (its bytes rounded up to the pool's alignment, or a
     * dedicated block's granule): 10,000,001 bytes under a 10,000,001-byte cap take 10,000,128 and never fit.
     */
    footprintBytes = requestedBytes,
  ): Promise<T> {
    // Larger than the pool's cap: no free can make it fit, so it is tried once (refused, with the
    // pool's figures) and never waits, where it waited for --max-wait, or until the daemon drained.
    const capBytes = this.poolFacts?.().capBytes ?? 0;
    if (capBytes > 0 && footprintBytes > capBytes) return attempt(false);
    if (this.failed) throw this.failed.error;
    this.tenantWaits?.take(tenant);
    const tryNow = this.size === 0 && !this.byTenant.has(tenant);
    const { waiter, settled } = this.join(tenant, attempt, discard, requestedBytes, tryNow);
    if (!tryNow) {
      this.wait(waiter, waitMs, onHandle);
      this.notifyFreed();
      return settled as Promise<T>;
    }
    const frees = this.frees;
    try {
      const value = await attempt(false);
      this.endFirstAttempt(waiter, true);
      return value;
    } catch (error) {
      // A refusal that waiting cannot cure, or failAll ran while the attempt was under way: no wait.
      const failed = this.failedNow();
      if (!isRetryableRefusal(error) || failed) {
        this.endFirstAttempt(waiter, false);
        throw isRetryableRefusal(error) && failed ? failed.error : error;
      }
      this.firstAttemptEnded(waiter);
      waiter.tried = true;
      waiter.lastRefusal = error;
      this.wait(waiter, waitMs, onHandle);
      // Memory freed (or a request of its tenant queued behind it) while the attempt was under way found
      // no waiter to serve: try again now.
      if (this.frees !== frees) this.notifyFreed();
      return settled as Promise<T>;
    }
  }

  /** `failed` as it is now (read after an await, where TypeScript keeps the narrowing of before it). */
  private failedNow(): { error: unknown } | undefined {
    return this.failed;
  }

  /** Puts a new waiter last in its tenant's list (its tenant last in the turn when it has none). */
  private join<T>(tenant: string, attempt: (retry: boolean) => Promise<T>, discard: (value: T) => void, requestedBytes: number, firstAttempt: boolean): { waiter: Waiter; settled: Promise<unknown> } {
    let resolve!: (value: unknown) => void;
    let reject!: (error: unknown) => void;
    const settled = new Promise<unknown>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const waiter: Waiter = {
      tenant,
      attempt,
      tried: false,
      discard: discard as (value: unknown) => void,
      resolve,
      reject,
      lastRefusal: undefined,
      requestedBytes,
      firstAttempt,
      timer: undefined,
      list: undefined,
      previous: undefined,
      next: undefined,
    };
    let list = this.byTenant.get(tenant);
    if (!list) this.byTenant.set(tenant, (list = new TenantWaiters()));
    list.push(waiter);
    this.listed++;
    if (firstAttempt) this.firstAttempts++;
    return { waiter, settled };
  }

  /** The waiter starts waiting: its deadline is armed and its caller gets the handle that cancels it. */
  private wait(waiter: Waiter, waitMs: number, onHandle: ((handle: WaitHandle) => void) | undefined): void {
    setLongTimeout(
      () => {
        if (this.leave(waiter)) {
          const last = waiter.lastRefusal ?? this.untriedRefusal(waiter);
          waiter.reject(new TensormemError('DEADLINE_EXCEEDED', last.reason, `waited ${waitMs} ms for device memory: ${last.message}`, last.metadata));
        }
      },
      waitMs,
      (timer) => (waiter.timer = timer),
    );
    onHandle?.({
      cancel: (error?: unknown) => {
        if (this.leave(waiter)) waiter.reject(error ?? new TensormemError('CANCELLED', 'FAILED_PRECONDITION', 'the call was cancelled while waiting for memory'));
      },
    });
  }

  /**
   * A first attempt ended without waiting (served, or failed for a reason waiting cannot cure): the
   * request gives up its tenant's place, and the tenant's requests queued behind it are tried now
   * (a served tenant taking its next turn after the others, as in drain).
   */
  private endFirstAttempt(waiter: Waiter, served: boolean): void {
    this.firstAttemptEnded(waiter);
    this.remove(waiter);
    if (!this.byTenant.has(waiter.tenant)) return;
    if (served) this.toBackOfTurn(waiter.tenant);
    this.notifyFreed();
  }

  /** The waiter's first attempt came back: it waits from now on, or leaves. */
  private firstAttemptEnded(waiter: Waiter): void {
    if (!waiter.firstAttempt) return;
    waiter.firstAttempt = false;
    this.firstAttempts--;
  }

  /** A served tenant takes its next turn after the others. */
  private toBackOfTurn(tenant: string): void {
    const rest = this.byTenant.get(tenant);
    if (rest) {
      this.byTenant.delete(tenant);
      this.byTenant.set(tenant, rest);
    }
  }

  /** Every waiter leaves the queue, its promise rejecting with `error` (the daemon drains: no one is served any more), and no request waits from now on (see `failed`). */
  failAll(error: unknown): void {
    this.failed = { error };
    for (const waiters of [...this.byTenant.values()]) {
      for (const waiter of [...waiters]) if (!waiter.firstAttempt && this.remove(waiter)) waiter.reject(error);
    }
  }

  /** What a waiter that was never tried (its tenant's earlier requests waited ahead of it) says at its deadline: the pool's figures now. */
  private untriedRefusal(waiter: Waiter): OutOfMemoryError {
    const facts = this.poolFacts?.() ?? { capName: 'pool cap (maxbytes)', capBytes: 0, usedBytes: 0, largestFreeBlockBytes: 0 };
    return new OutOfMemoryError({
      memory: 'DEVICE',
      requestedBytes: waiter.requestedBytes,
      ...facts,
      backendDetail: `not tried: tenant "${waiter.tenant}" had earlier requests waiting ahead of it`,
    });
  }

  /**
   * Takes out a waiter that gives up (deadline, cancel) rather than being served; when it was its
   * tenant's head, the next one of that tenant may fit now, so the queue is drained again.
   */
  private leave(waiter: Waiter): boolean {
    const wasHead = waiter.list !== undefined && waiter.list.first === waiter;
    if (!this.remove(waiter)) return false;
    if (wasHead) this.notifyFreed();
    return true;
  }

  private remove(waiter: Waiter): boolean {
    const list = waiter.list;
    if (!list) return false;
    clearTimeout(waiter.timer);
    list.delete(waiter);
    this.listed--;
    this.firstAttemptEnded(waiter);
    if (list.size === 0) this.byTenant.delete(waiter.tenant);
    this.tenantWaits?.give(waiter.tenant);
    return true;
  }

  /** Memory was freed on this device: serve what now fits, tenants in turn. */
  notifyFreed(): void {
    this.frees++;
    if (this.byTenant.size === 0) return;
    if (this.draining) {
      this.drainAgain = true;
      return;
    }
    this.draining = true;
    setImmediate(() => {
      this.drain().finally(() => {
        this.draining = false;
        if (this.drainAgain) {
          this.drainAgain = false;
          this.notifyFreed();
        }
      });
    });
  }

  private async drain(): Promise<void> {
    let progress = true;
    while (progress) {
      progress = false;
      for (const tenant of [...this.byTenant.keys()]) {
        const waiter = this.byTenant.get(tenant)?.first;
        // A first attempt under way (run) holds its tenant's turn: those behind it wait for its answer.
        if (!waiter || waiter.firstAttempt) continue;
        try {
          const retry = waiter.tried;
          waiter.tried = true;
          const value = await waiter.attempt(retry);
          if (!this.remove(waiter)) {
            waiter.discard(value);
          } else {
            waiter.resolve(value);
            this.toBackOfTurn(tenant);
          }
          progress = true;
        } catch (error) {
          if (isRetryableRefusal(error)) {
            waiter.lastRefusal = error;
          } else if (this.remove(waiter)) {
            waiter.reject(error);
            progress = true;
          }
        }
      }
    }
  }
}
