// Learned run times, the history backfill estimates from. Each GPU job that completes adds its
// run time to its queue's list and to the list of its queue and params digest (a training run
// with more epochs takes longer), both capped at the newest SAMPLES. Estimates are a high
// percentile (policy/estimates.ts), the narrower list's once it has enough samples. Lists are
// read for the whole host at most once per REFRESH_MS (other hosts' runs count too), so the
// dispatch pass reads them rarely; a host's own completions count at once.
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { durationsKey } from '../queues/redis-names.js';
import { estimateFromSamples, MIN_SAMPLES } from './policy/index.js';

export const SAMPLES = 100;
const REFRESH_MS = 10_000;

/** A short digest of a job's params: jobs with equal params share a duration list. */
export function paramsDigest(payload: unknown): string | undefined {
  const params = (payload as { params?: unknown } | null)?.params;
  if (params === undefined || params === null) return undefined;
  return createHash('sha1').update(stableJson(params)).digest('hex').slice(0, 16);
}

function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stableJson((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

export class DurationBook {
  private readonly samples = new Map<string, number[]>();
  private readAt = new Map<string, number>();

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  async record(queue: string, params: string | undefined, ms: number): Promise<void> {
    const keys = [durationsKey(this.prefix, queue), ...(params ? [durationsKey(this.prefix, queue, params)] : [])];
    const multi = this.redis.multi();
    for (const key of keys) {
      multi.lpush(key, Math.round(ms)).ltrim(key, 0, SAMPLES - 1);
      this.samples.set(key, [Math.round(ms), ...(this.samples.get(key) ?? [])].slice(0, SAMPLES));
    }
    await multi.exec();
  }

  /** Reads the lists of these (queue, params) pairs not read within REFRESH_MS. */
  async refresh(wanted: readonly { queue: string; params?: string }[], now = Date.now()): Promise<void> {
    const keys = [...new Set(wanted.flatMap((w) => [durationsKey(this.prefix, w.queue), ...(w.params ? [durationsKey(this.prefix, w.queue, w.params)] : [])]))];
    const stale = keys.filter((k) => now - (this.readAt.get(k) ?? -Infinity) >= REFRESH_MS);
    if (stale.length === 0) return;
    const lists = await Promise.all(stale.map((k) => this.redis.lrange(k, 0, SAMPLES - 1)));
    stale.forEach((k, i) => {
      this.samples.set(k, lists[i]!.map(Number));
      this.readAt.set(k, now);
    });
  }

  /** The expected run time (ms) of a job of `queue` with these params; undefined: too little history. */
  estimate(queue: string, params?: string): number | undefined {
    const narrow = params ? this.samples.get(durationsKey(this.prefix, queue, params)) : undefined;
    if (narrow && narrow.length >= MIN_SAMPLES) return estimateFromSamples(narrow);
    return estimateFromSamples(this.samples.get(durationsKey(this.prefix, queue)) ?? []);
  }
}
