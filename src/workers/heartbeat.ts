// A host worker's heartbeat: its status (queues/worker-status.ts) published every period under a
// key that expires after three periods, once more shortly after each change so the API sees a job
// start or end without waiting, and withdrawn at close so the worker leaves the list at once.
import type { Redis } from 'ioredis';
import type { Logger } from '../logger.js';
import { publishStatus, withdrawStatus, type WorkerStatus } from '../queues/worker-status.js';

export interface HeartbeatOptions {
  redis: Redis;
  prefix: string;
  host: string;
  instance: string;
  periodMs: number;
  status: () => WorkerStatus;
  /** Also done on every periodic beat (not on the soon() ones). */
  onBeat?: () => Promise<void>;
  log: Logger;
}

export class Heartbeat {
  private timer: NodeJS.Timeout | undefined;
  private soonTimer: NodeJS.Timeout | undefined;
  private closing: Promise<void> | undefined;

  constructor(private readonly opts: HeartbeatOptions) {}

  async start(): Promise<void> {
    await this.beat();
    this.timer = setInterval(() => {
      void this.beat();
      this.opts.onBeat?.().catch((err: unknown) => this.opts.log.warn({ err }, 'heartbeat task failed'));
    }, this.opts.periodMs);
  }

  /** A beat 100 ms from now; changes that come close together share it. */
  soon(): void {
    if (this.closing) return;
    this.soonTimer ??= setTimeout(() => {
      this.soonTimer = undefined;
      void this.beat();
    }, 100);
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      clearInterval(this.timer);
      clearTimeout(this.soonTimer);
      const { redis, prefix, host, instance } = this.opts;
      await withdrawStatus(redis, prefix, host, instance).catch(() => {});
    })();
    return this.closing;
  }

  private async beat(): Promise<void> {
    try {
      await publishStatus(this.opts.redis, this.opts.prefix, this.opts.status(), this.opts.periodMs * 3);
    } catch (err) {
      this.opts.log.warn({ err }, 'heartbeat failed');
    }
  }
}
