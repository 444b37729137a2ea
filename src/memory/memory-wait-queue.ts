/**
 * Backpressure for one device: allocations that asked to wait are queued and retried whenever device
 * memory is freed. Tenants are served in turn (round robin), each tenant's requests first come first
 * served, and a request that still does not fit does not hold up other tenants' smaller ones.
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
  timer: NodeJS.Timeout;
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

export class MemoryWaitQueue {
  /** Tenants in service order; each with its waiters in arrival order. */
  private readonly byTenant = new Map<string, Waiter[]>();
  private draining = false;
  private drainAgain = false;

  constructor(private readonly poolFacts?: PoolFacts) {}
  /** notifyFreed calls so far, waiters or not: a first attempt refused before a free but queued after it must not miss it. */
  private frees = 0;

  get size(): number {
    let count = 0;
    for (const waiters of this.byTenant.values()) count += waiters.length;
    return count;
  }

  /**
   * Runs `attempt` now unless others are already waiting (then queues behind them, for fairness), and
   * again after every free until it succeeds, fails for another reason, or `waitMs` passes (any length:
   * waits beyond setTimeout's 2^31 - 1 ms are armed in steps). Every attempt after the first gets
   * `retry` true (the pool counts one refused request, not one per attempt).
   */
  async run<T>(
    tenant: string,
    attempt: (retry: boolean) => Promise<T>,
    discard: (value: T) => void,
    waitMs: number,
    onHandle?: (handle: WaitHandle) => void,
    /** The request's bytes: a waiter that times out without having been tried names them. */
    requestedBytes = 0,
  ): Promise<T> {
    if (this.size === 0) {
      const frees = this.frees;
      try {
        return await attempt(false);
      } catch (error) {
        if (!isRetryableRefusal(error)) throw error;
        const queued = this.enqueue(tenant, attempt, discard, error, requestedBytes, waitMs, onHandle, true);
        // Memory freed while the refusal was on its way here found no waiter to serve: try again now.
        if (this.frees !== frees) this.notifyFreed();
        return queued;
      }
    }
    const queued = this.enqueue(tenant, attempt, discard, undefined, requestedBytes, waitMs, onHandle, false);
    this.notifyFreed();
    return queued;
  }

  private enqueue<T>(
    tenant: string,
    attempt: (retry: boolean) => Promise<T>,
    discard: (value: T) => void,
    refusal: OutOfMemoryError | undefined,
    requestedBytes: number,
    waitMs: number,
    onHandle: ((handle: WaitHandle) => void) | undefined,
    tried: boolean,
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const waiter: Waiter = {
        tenant,
        attempt,
        tried,
        discard: discard as (value: unknown) => void,
        resolve: resolve as (value: unknown) => void,
        reject,
        lastRefusal: refusal,
        requestedBytes,
        timer: undefined as unknown as NodeJS.Timeout,
      };
      setLongTimeout(
        () => {
          if (this.leave(waiter)) {
            const last = waiter.lastRefusal ?? this.untriedRefusal(waiter);
            reject(new TensormemError('DEADLINE_EXCEEDED', last.reason, `waited ${waitMs} ms for device memory: ${last.message}`, last.metadata));
          }
        },
        waitMs,
        (timer) => (waiter.timer = timer),
      );
      const list = this.byTenant.get(tenant);
      if (list) list.push(waiter);
      else this.byTenant.set(tenant, [waiter]);
      onHandle?.({
        cancel: (error?: unknown) => {
          if (this.leave(waiter)) reject(error ?? new TensormemError('CANCELLED', 'FAILED_PRECONDITION', 'the call was cancelled while waiting for memory'));
        },
      });
    });
  }

  /** Every waiter leaves the queue, its promise rejecting with `error` (the daemon drains: no one is served any more). */
  failAll(error: unknown): void {
    for (const waiters of [...this.byTenant.values()]) {
      for (const waiter of [...waiters]) if (this.remove(waiter)) waiter.reject(error);
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
    const wasHead = this.byTenant.get(waiter.tenant)?.[0] === waiter;
    if (!this.remove(waiter)) return false;
    if (wasHead) this.notifyFreed();
    return true;
  }

  private remove(waiter: Waiter): boolean {
    const list = this.byTenant.get(waiter.tenant);
    const index = list?.indexOf(waiter) ?? -1;
    if (index < 0) return false;
    clearTimeout(waiter.timer);
    list!.splice(index, 1);
    if (list!.length === 0) this.byTenant.delete(waiter.tenant);
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
        const waiter = this.byTenant.get(tenant)?.[0];
        if (!waiter) continue;
        try {
          const retry = waiter.tried;
          waiter.tried = true;
          const value = await waiter.attempt(retry);
          if (!this.remove(waiter)) {
            waiter.discard(value);
          } else {
            waiter.resolve(value);
            // This tenant was served: it goes to the back of the turn.
            const rest = this.byTenant.get(tenant);
            if (rest) {
              this.byTenant.delete(tenant);
              this.byTenant.set(tenant, rest);
            }
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
