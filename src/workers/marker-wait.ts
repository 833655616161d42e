// How a host worker waits for work without polling Redis: one BZPOPMIN over the BullMQ "marker"
// keys of the queues it could start a job from right now, plus a wake key of its own that it
// writes when capacity frees up. No job is ever held while waiting for capacity.
import type { Redis } from 'ioredis';
import type { Logger } from '../logger.js';
import { markerKey, wakeKey } from '../queues/redis-names.js';

export interface MarkerWaitOptions {
  /** For commands; `blocking` is dedicated to the BZPOPMIN. */
  redis: Redis;
  blocking: Redis;
  prefix: string;
  host: string;
  instance: string;
  /** Longest single BZPOPMIN; also bounds how late a delayed job seen by another host starts here. */
  maxBlockMs: number;
  log: Logger;
}

export class MarkerWait {
  /** When a delayed job of a queue falls due, from a marker popped too early. */
  private readonly dueAt = new Map<string, number>();
  private readonly wakeKey: string;

  constructor(private readonly opts: MarkerWaitOptions) {
    this.wakeKey = wakeKey(opts.prefix, opts.host, opts.instance);
  }

  /**
   * Blocks until one of `queues` has work, wake() is called, a delayed job falls due, `until`
   * (ms, the policy's next decision time) comes or the longest block passes; returns the queue
   * whose marker it took, if any.
   */
  async next(queues: readonly string[], until?: number): Promise<string | undefined> {
    const { prefix, blocking } = this.opts;
    const now = Date.now();
    let timeoutMs = Math.min(this.opts.maxBlockMs, until === undefined ? Infinity : until - now);
    for (const [queue, at] of this.dueAt) {
      if (at <= now) this.dueAt.delete(queue);
      else timeoutMs = Math.min(timeoutMs, at - now);
    }
    const keys = [...queues.map((q) => markerKey(prefix, q)), this.wakeKey];
    const res = await blocking.bzpopmin(...keys, Math.max(timeoutMs, 10) / 1000);
    if (!res) return undefined;
    const [key, , score] = res;
    const queue = queues.find((q) => markerKey(prefix, q) === key);
    // A marker's score is when a delayed job falls due (0: a job is ready now).
    if (queue && Number(score) > Date.now()) {
      this.dueAt.set(queue, Math.min(this.dueAt.get(queue) ?? Infinity, Number(score)));
      return undefined;
    }
    return queue;
  }

  /** Puts back a marker taken for a queue that was then not tried: it belongs to another host. */
  async giveBack(queue: string): Promise<void> {
    await this.opts.redis.zadd(markerKey(this.opts.prefix, queue), 0, '0');
  }

  /** Ends the current (or the next) wait at once. */
  wake(): void {
    this.opts.redis.zadd(this.wakeKey, 0, 'wake').catch((err: unknown) => this.opts.log.warn({ err }, 'wake failed'));
  }

  async close(): Promise<void> {
    await this.opts.redis.del(this.wakeKey).catch(() => {});
  }
}
