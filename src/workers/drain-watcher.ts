// A host worker's view of its drains (queues/drains.ts): read at start, again when the drain
// channel names the host (the process's one listener calls `refresh`), and every period in case
// a message was missed while Redis was away. `onChange` hears each new state; the first read
// always counts as one. When Redis does not answer, the last state read stands.
import type { Logger } from '../logger.js';
import type { Redis } from 'ioredis';
import { readDrains, type HostDrains } from '../queues/drains.js';

export interface DrainWatcherOptions {
  redis: Redis;
  prefix: string;
  host: string;
  periodMs: number;
  onChange(drains: HostDrains): void;
  log: Logger;
}

export class DrainWatcher {
  private current: HostDrains = { gpus: new Map() };
  private seen: string | undefined;
  private reading: Promise<void> | undefined;
  private again = false;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly opts: DrainWatcherOptions) {}

  /** The drains last read. */
  get drains(): HostDrains {
    return this.current;
  }

  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.opts.periodMs);
  }

  /** Reads the drains again; a call during a read makes one more read after it, so no change is missed. */
  refresh(): Promise<void> {
    if (this.reading) {
      this.again = true;
      return this.reading;
    }
    this.reading = this.read().finally(() => {
      this.reading = undefined;
      if (this.again && !this.closed) {
        this.again = false;
        void this.refresh();
      }
    });
    return this.reading;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await this.reading;
  }

  private async read(): Promise<void> {
    let drains: HostDrains;
    try {
      drains = await readDrains(this.opts.redis, this.opts.prefix, this.opts.host);
    } catch (err) {
      this.opts.log.warn({ err }, 'could not read the drains of this host; keeping the last ones read');
      return;
    }
    const key = JSON.stringify([drains.host, [...drains.gpus].sort(([a], [b]) => a - b)]);
    if (this.closed || key === this.seen) return;
    if (this.seen !== undefined || drains.host || drains.gpus.size > 0) {
      const gpus = Object.fromEntries([...drains.gpus].map(([index, d]) => [index, d.reason]));
      this.opts.log.info({ drained: drains.host?.reason ?? null, gpus }, 'drains of this host changed');
    }
    this.seen = key;
    this.current = drains;
    this.opts.onChange(drains);
  }
}
