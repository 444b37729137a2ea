/** One unary call as a promise: its error mapped to a TensormemClientError, its deadline, an AbortSignal that gives it up. */
import { ClientUnaryCall, ServiceError, status as Status } from '@grpc/grpc-js';
import { describe } from '../errors';
import { MAX_TIMER_MS } from '../long-timeout';
import { clientError, invalidArgument, TensormemClientError } from './client-errors';

export type Callback<T> = (error: ServiceError | null, value?: T) => void;

/** Promisifies one unary call and maps its error. */
export function call<T>(invoke: (callback: Callback<T>) => unknown): Promise<T> {
  return new Promise((resolve, reject) => {
    invoke((error, value) => (error ? reject(clientError(error)) : resolve(value as T)));
  });
}

/**
 * A unary call that `signal` can give up: on abort the call is cancelled (the daemon sees it, and a
 * call waiting for memory leaves the queue) and the promise rejects with CANCELLED naming `method` and
 * the signal's reason. A signal already aborted sends nothing.
 */
export function abortable<T>(method: string, signal: AbortSignal | undefined, invoke: (callback: Callback<T>) => ClientUnaryCall): Promise<T> {
  if (signal === undefined) return call(invoke);
  if (!(signal instanceof AbortSignal)) throw invalidArgument(`${method} option signal`, 'an AbortSignal', signal);
  const aborted = () => new TensormemClientError(Status.CANCELLED, undefined, `${method} was aborted by its signal (${signal.reason instanceof Error ? signal.reason.message : describe(signal.reason)})`, {});
  if (signal.aborted) return Promise.reject(aborted());
  return new Promise((resolve, reject) => {
    const pending = invoke((error, value) => {
      unwatch();
      if (error) reject(clientError(error));
      else resolve(value as T);
    });
    const unwatch = watchAbort(signal, () => {
      reject(aborted());
      pending.cancel();
    });
  });
}

/** The calls each AbortSignal gives up when it aborts, and the one listener that runs them. */
const abortWatchers = new WeakMap<AbortSignal, { calls: Set<() => void>; listener: () => void }>();

/**
 * Runs `giveUp` when `signal` aborts; returns what stops watching. One 'abort' listener per signal,
 * however many calls wait on it: a trainer passes its one stop signal to every allocate, and a
 * listener per call put 11 on it with 11 calls in flight, which Node reports as a leak
 * (MaxListenersExceededWarning) though each listener went with its call.
 */
export function watchAbort(signal: AbortSignal, giveUp: () => void): () => void {
  let watched = abortWatchers.get(signal);
  if (!watched) {
    const calls = new Set<() => void>();
    const listener = () => {
      abortWatchers.delete(signal);
      for (const giveUpCall of calls) giveUpCall();
    };
    watched = { calls, listener };
    abortWatchers.set(signal, watched);
    signal.addEventListener('abort', listener, { once: true });
  }
  const { calls, listener } = watched;
  calls.add(giveUp);
  return () => {
    if (!calls.delete(giveUp) || calls.size > 0 || abortWatchers.get(signal)?.calls !== calls) return;
    abortWatchers.delete(signal);
    signal.removeEventListener('abort', listener);
  };
}

/**
 * Call options for a deadline `ms` from now; none for an unset or 0 one, and none for one past
 * MAX_TIMER_MS (about 24.8 days) or infinite: grpc-js arms a setTimeout for the deadline, which past
 * MAX_TIMER_MS would fire at once (DEADLINE_EXCEEDED before the call is sent).
 */
export function deadlineIn(ms: number | undefined): { deadline?: number } {
  return ms && !(ms > MAX_TIMER_MS) ? { deadline: Date.now() + ms } : {};
}
