/** Timers for delays of any length (setTimeout fires at once past 2^31 - 1 ms). */

/** The longest delay setTimeout takes (2^31 - 1 ms, about 24.8 days); a longer one would fire at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * setTimeout for any delay: one longer than MAX_TIMER_MS is armed in steps, each step re-arming the
 * next, and `onTimer` receives every new timer so that the current one can be cleared. An infinite
 * delay never fires.
 */
export function setLongTimeout(callback: () => void, delayMs: number, onTimer: (timer: NodeJS.Timeout) => void): void {
  if (!(delayMs > MAX_TIMER_MS)) {
    onTimer(setTimeout(callback, Math.max(0, delayMs)));
    return;
  }
  onTimer(setTimeout(() => setLongTimeout(callback, delayMs - MAX_TIMER_MS, onTimer), MAX_TIMER_MS));
}

/**
 * setInterval for any period: `callback` every `periodMs` until the returned function is called (also
 * from within `callback`). A period longer than MAX_TIMER_MS, which setInterval would turn into 1 ms,
 * is armed anew after each call in setLongTimeout's steps.
 */
export function setLongInterval(callback: () => void, periodMs: number): () => void {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const stop = () => {
    stopped = true;
    clearTimeout(timer);
  };
  if (periodMs <= MAX_TIMER_MS) {
    timer = setInterval(callback, periodMs);
    return stop;
  }
  const arm = () =>
    setLongTimeout(
      () => {
        callback();
        if (!stopped) arm();
      },
      periodMs,
      (next) => (timer = next),
    );
  arm();
  return stop;
}
