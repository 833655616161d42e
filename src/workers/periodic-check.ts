// A check of the host (nvidia-smi and the like) that runs every `periodMs`, and on demand before
// a dispatch pass when its last run is older than that: the hot path runs it at most once a
// period. Runs never overlap; a caller that asks while one is in flight waits for that one.
export class PeriodicCheck {
  private checkedAt = -Infinity;
  private running: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  /** `run` reports its own failures: a rejection here would be unhandled on the timer. */
  constructor(
    private readonly periodMs: number,
    private readonly run: () => Promise<void>,
  ) {}

  /** True once close() was called: a run finishing after that must not report a change. */
  get closed(): boolean {
    return this.stopped;
  }

  async start(): Promise<void> {
    await this.now();
    this.timer = setInterval(() => void this.now(), this.periodMs);
  }

  /** Runs again unless the last run is younger than a period. */
  fresh(): Promise<void> {
    return performance.now() - this.checkedAt < this.periodMs ? Promise.resolve() : this.now();
  }

  async close(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.running;
  }

  private now(): Promise<void> {
    this.running ??= this.run().finally(() => {
      this.running = undefined;
      this.checkedAt = performance.now();
    });
    return this.running;
  }
}
