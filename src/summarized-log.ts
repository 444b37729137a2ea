/** How often a summarized line may be written: the README's "at most a line every 10 s" for each such event. */
export const SUMMARY_INTERVAL_MS = 10_000;

/**
 * A log line a client can cause at will (a refused connection, a stalled request), written at most once
 * an interval: the first at once, those that come within the interval counted and said in one line
 * when it is up (not only with the next one after it, which may never come: a burst's first line alone
 * would stand for the whole burst). `line` gets the count the line stands for and the last one's sample.
 */
export class SummarizedLog<Sample> {
  private count = 0;
  private last: Sample | undefined;
  private lastLineAt = -Infinity;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly line: (count: number, last: Sample) => void,
    private readonly intervalMs = SUMMARY_INTERVAL_MS,
  ) {}

  note(sample: Sample): void {
    this.count++;
    this.last = sample;
    const wait = this.lastLineAt + this.intervalMs - Date.now();
    if (wait <= 0) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), wait).unref();
  }

  /** Says what is counted now (at close), and stops the interval's timer. */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.count === 0) return;
    const count = this.count;
    this.count = 0;
    this.lastLineAt = Date.now();
    this.line(count, this.last as Sample);
  }
}
