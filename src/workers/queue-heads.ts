// When the next job of each queue was enqueued, read straight from BullMQ's keys (see
// redis-names.ts): what the dispatch policy compares to serve the oldest job first and to hold
// GPUs for a starved one. One round trip for the heads, one for their times.
import type { Redis } from 'ioredis';
import { jobKey, waitKey } from '../queues/redis-names.js';

/** Each queue's head job enqueue time (ms); undefined for a queue with nothing waiting. */
export async function readHeads(redis: Redis, prefix: string, queues: readonly string[]): Promise<Map<string, number | undefined>> {
  if (queues.length === 0) return new Map();
  const heads = await Promise.all(queues.map((q) => redis.lindex(waitKey(prefix, q), -1)));
  const stamps = await Promise.all(
    queues.map((q, i) => (heads[i] ? redis.hget(jobKey(prefix, q, heads[i]!), 'timestamp') : Promise.resolve(null))),
  );
  return new Map(queues.map((q, i) => [q, stamps[i] ? Number(stamps[i]) : undefined]));
}
