// Sends a child's output to its BullMQ job without letting a chatty child flood Redis: log
// lines are batched and capped per flush (BullMQ keeps only the last `keepLogs` lines anyway),
// and progress updates are coalesced so only the newest one is ever waiting to be written.
import type { Job } from 'bullmq';
import type { Logger } from '../logger.js';

const FLUSH_MS = 250;
const MAX_LINES_PER_FLUSH = 200;
const MAX_LINE_CHARS = 2000;

export class JobOutput {
  private lines: string[] = [];
  private dropped = 0;
  private timer: NodeJS.Timeout | undefined;
  private chain: Promise<unknown> = Promise.resolve();
  private pendingProgress: object | undefined;
  private progressRun: Promise<void> | undefined;
  private lastProgress: object | undefined;
  private detached = false;

  constructor(
    private readonly job: Job,
    private readonly logger: Logger,
  ) {}

  log(line: string): void {
    if (this.lines.length >= MAX_LINES_PER_FLUSH) {
      this.lines.shift();
      this.dropped++;
    }
    this.lines.push(line.length > MAX_LINE_CHARS ? `${line.slice(0, MAX_LINE_CHARS)}…` : line);
    this.timer ??= setTimeout(() => this.flushLogs(), FLUSH_MS);
  }

  progress(value: object): void {
    this.pendingProgress = value;
    this.lastProgress = value;
    this.progressRun ??= this.writeProgress();
  }

  latestProgress(): object | undefined {
    return this.lastProgress;
  }

  /** Stops writing to the job (Redis lost it): output is dropped, the latest progress still kept. */
  detach(): void {
    this.detached = true;
  }

  private async writeProgress(): Promise<void> {
    try {
      while (this.pendingProgress && !this.detached) {
        const value = this.pendingProgress;
        this.pendingProgress = undefined;
        await this.job.updateProgress(value).catch((err: unknown) => this.logger.warn({ err }, 'progress update failed'));
      }
    } finally {
      this.progressRun = undefined;
    }
  }

  private flushLogs(): Promise<unknown> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const lines = this.lines;
    const dropped = this.dropped;
    this.lines = [];
    this.dropped = 0;
    if (lines.length === 0 || this.detached) return this.chain;
    const rows = dropped > 0 ? [`[… ${dropped} lines dropped]`, ...lines] : lines;
    this.chain = this.chain.then(async () => {
      // Sent together on one connection: Redis keeps their order, without a round trip each.
      await Promise.all(rows.map((row) => this.job.log(row)));
    }).catch((err: unknown) => this.logger.warn({ err }, 'job log write failed'));
    return this.chain;
  }

  /** Writes what is buffered; call before the job is moved to its final state. */
  async drain(): Promise<void> {
    await this.flushLogs();
    await this.progressRun;
  }
}
